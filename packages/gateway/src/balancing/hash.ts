/**
 * Small, fast, well-mixed 32-bit string hashing (FNV-1a over UTF-16 code
 * units, finished with murmur3's fmix32 so nearby strings land far apart).
 * Used for sticky canary buckets and shuffle-shard (rendezvous) scores; not
 * for anything adversarial.
 */

/** FNV-1a over `s`'s UTF-16 code units, continuing from `seed`, finished with fmix32. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A score for the pair (`a`, `b`), as if hashing `a + "\0" + b`, without building the string. */
export function pairHash(a: string, b: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) {
    h ^= a.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h = Math.imul(h ^ 0, 0x01000193);
  for (let i = 0; i < b.length; i++) {
    h ^= b.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
