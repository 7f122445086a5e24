/**
 * Delay buckets for `nak(delayMs)`.
 *
 * RabbitMQ has no delayed redelivery, and a per-message TTL only expires at
 * the head of a queue: one delay queue for all delays would hold a 1 s delay
 * behind a 1 h one. So each (topic, group) has one delay queue per bucket,
 * and a delay goes to the smallest bucket that is at least as long. A message
 * still carries its exact delay as `expiration`, so it usually comes back on
 * time; behind a longer delay of the same bucket it waits at most the bucket
 * (never less than asked, at most ~1.5x). The set of buckets is fixed and
 * small: at most 29 queues up to an hour, then one per whole hour.
 */
const LADDER_MS = [
  50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000,
  450_000, 600_000, 900_000, 1_200_000, 1_800_000, 2_700_000, 3_600_000,
] as const;

const HOUR_MS = 3_600_000;
/** The longest delay a nak may ask for: 30 days. */
export const MAX_DELAY_MS = 30 * 24 * HOUR_MS;

/**
 * The bucket (ms) a delay waits in: the smallest ladder step >= `delayMs`,
 * beyond an hour the next whole hour.
 *
 * @example
 * ```ts
 * delayBucketMs(250); // 300
 * delayBucketMs(5_400_000); // 7_200_000
 * ```
 */
export function delayBucketMs(delayMs: number): number {
  if (!Number.isFinite(delayMs) || delayMs <= 0 || delayMs > MAX_DELAY_MS) {
    throw new RangeError(`rabbitmq: a delay must be a number of ms in (0, ${MAX_DELAY_MS}], got ${delayMs}`);
  }
  for (const step of LADDER_MS) if (delayMs <= step) return step;
  return Math.ceil(delayMs / HOUR_MS) * HOUR_MS;
}
