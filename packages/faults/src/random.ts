/**
 * Seeded randomness per rule, and latency draws.
 *
 * Each rule draws from random sources of its own, seeded from the injector's
 * seed and the rule's id (not its position), so adding, removing or
 * reordering other rules never shifts a rule's decisions: the n-th request a
 * rule matches is injected or not, and gets the same delay, in every run with
 * the same seed. Decisions and delays come from two separate streams, so
 * changing a rule's latency distribution does not change which requests it
 * hits.
 */
import { createHash } from 'node:crypto';
import { seededRandom } from '@bulwark/resilience';
import { MAX_DELAY_MS, type LatencySpec } from './rules.js';

/** A random source in [0, 1) for (seed, rule id, stream), reproducible across runs and processes. */
export function ruleRandom(seed: number, ruleId: string, stream: 'decide' | 'sample'): () => number {
  const digest = createHash('sha256').update(`bulwark.faults\0${seed}\0${ruleId}\0${stream}`).digest();
  return seededRandom(digest.readUInt32BE(0));
}

/**
 * A delay in milliseconds drawn from `spec` with `random`, capped at
 * `MAX_DELAY_MS` (a heavy-tailed draw can be arbitrarily long; a fault
 * injector should not hold a request for a day).
 */
export function sampleLatency(spec: LatencySpec, random: () => number): number {
  let ms: number;
  if ('fixedMs' in spec) return spec.fixedMs;
  switch (spec.distribution) {
    case 'uniform':
      ms = spec.minMs + random() * (spec.maxMs - spec.minMs);
      break;
    case 'exponential':
      ms = -spec.meanMs * Math.log(1 - random());
      break;
    case 'lognormal':
      ms = spec.medianMs * Math.exp(spec.sigma * standardNormal(random));
      break;
    case 'pareto':
      ms = spec.scaleMs / Math.pow(1 - random(), 1 / spec.shape);
      break;
  }
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_DELAY_MS) : MAX_DELAY_MS;
}

/** A standard normal draw (Box-Muller; two uniforms per draw, so a stream's position depends only on the count of draws). */
function standardNormal(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) is never taken
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
