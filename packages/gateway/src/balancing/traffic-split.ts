/**
 * Canary traffic split: which side (stable or canary) serves one request.
 *
 * Order of decision, per request:
 * 1. the routing header, when configured and present: its value selects the
 *    canary (`X-Canary: true`); any other value of that header selects stable
 *    (so a tester can also force stable);
 * 2. the sticky key (e.g. the user id), when the proxy gives one: the key
 *    hashes (with `salt`) to a bucket in [0, 10 000); buckets below
 *    `weight × 100` go to the canary. The same user always lands on the same
 *    side for a given weight, and raising the weight only moves users from
 *    stable to canary, never back;
 * 3. otherwise a random draw with probability `weight / 100`.
 *
 * No allocation and no timer per call.
 */
import { hash32 } from './hash.js';
import type { UpstreamService } from './types.js';

export type Side = 'stable' | 'canary';

/** What `choose` needs from a request. */
export interface SplitRequest {
  /** A request header's value (lowercase name), or undefined when absent. */
  header(name: string): string | undefined;
  /** The identity to keep on one side (user id, session id); absent for anonymous requests. */
  readonly stickyKey?: string | undefined;
}

export interface TrafficSplitOptions<S extends UpstreamService = UpstreamService> {
  readonly stable: S;
  readonly canary: S;
  /** Percentage of traffic for the canary, 0..100 (fractions allowed, to 0.01). */
  readonly weight: number;
  /** Header routing: the canary for requests whose header `name` equals `value` (case-insensitive). */
  readonly header?: { readonly name: string; readonly value: string } | undefined;
  /** Salt for the sticky hash, so two experiments split users independently. Default: the canary's name. */
  readonly salt?: string;
  /** Whether a `stickyKey` pins the side (default true). */
  readonly sticky?: boolean;
  /** Randomness for requests without a sticky key, in [0, 1). Default `Math.random`. */
  readonly random?: () => number;
}

export interface TrafficSplit<S extends UpstreamService = UpstreamService> {
  readonly stable: S;
  readonly canary: S;
  /** The current canary weight, 0..100. */
  readonly weight: number;
  choose(request: SplitRequest): Side;
  /** The upstream of `choose(request)`. */
  upstreamFor(request: SplitRequest): S;
  /** Changes the canary weight (a gradual rollout). Sticky users only move stable → canary as it rises. */
  setWeight(weight: number): void;
  /** The sticky bucket of a key, in [0, 10 000): canary iff bucket < weight × 100. */
  bucketOf(key: string): number;
}

const BUCKETS = 10_000;

export function createTrafficSplit<S extends UpstreamService>(options: TrafficSplitOptions<S>): TrafficSplit<S> {
  const random = options.random ?? Math.random;
  const sticky = options.sticky ?? true;
  const headerName = options.header?.name.toLowerCase();
  const headerValue = options.header?.value.toLowerCase();
  const seed = hash32(options.salt ?? options.canary.name);
  let weight = 0;
  let threshold = 0;
  const setWeight = (w: number): void => {
    if (!(Number.isFinite(w) && w >= 0 && w <= 100)) throw new TypeError(`traffic split: weight must be in [0, 100], got ${String(w)}`);
    weight = w;
    threshold = Math.round(w * (BUCKETS / 100));
  };
  setWeight(options.weight);
  const bucketOf = (key: string): number => hash32(key, seed) % BUCKETS;
  const choose = (request: SplitRequest): Side => {
    if (headerName !== undefined) {
      const value = request.header(headerName);
      if (value !== undefined) return value.toLowerCase() === headerValue ? 'canary' : 'stable';
    }
    if (threshold === 0) return 'stable';
    if (threshold === BUCKETS) return 'canary';
    const key = request.stickyKey;
    if (sticky && key !== undefined) return bucketOf(key) < threshold ? 'canary' : 'stable';
    return random() * BUCKETS < threshold ? 'canary' : 'stable';
  };
  return {
    stable: options.stable,
    canary: options.canary,
    get weight() {
      return weight;
    },
    choose,
    upstreamFor: (request) => (choose(request) === 'canary' ? options.canary : options.stable),
    setWeight,
    bucketOf,
  };
}
