/**
 * Outbox partitions: a message's ordering key maps to one of a fixed number
 * of partitions, and one relay at a time owns a partition, so messages of one
 * key are published in the order they were written even with several relays.
 * The number is fixed: it is part of the stored data.
 */
export const OUTBOX_PARTITIONS = 16;

/** FNV-1a over the key's UTF-16 code units, modulo the partition count. */
export function partitionOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % OUTBOX_PARTITIONS;
}
