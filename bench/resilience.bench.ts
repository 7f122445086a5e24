/**
 * `npm run bench:resilience`: the cost of Bulwark's call policies on the
 * success path, side by side with cockatiel and opossum in one run.
 *
 * Contenders (all call the same `async () => 1`):
 *   bare                 the operation alone
 *   pipeline             Bulwark retry → breaker → bulkhead → timeout (a live 1 s timeout per call)
 *   cockatiel pipeline   wrap(timeout, retry, circuitBreaker, bulkhead) with TimeoutStrategy.Aggressive, which,
 *                        like Bulwark's timeout, rejects at the deadline even when the operation ignores its signal
 *   cockatiel coop.      the same with TimeoutStrategy.Cooperative (only aborts the signal; cheaper, weaker)
 *   breaker              Bulwark breaker alone (count window of 100, 50% failure rate)
 *   cockatiel breaker    ConsecutiveBreaker(5), cockatiel's cheapest breaker
 *   cockatiel sampling   SamplingBreaker (50% over 10 s), the rate-based equivalent of Bulwark's
 *   opossum breaker      errorThresholdPercentage 50, no timeout
 *   open reject          Bulwark isolated breaker refusing a call (caught)
 *   cockatiel open       cockatiel isolated breaker refusing a call (caught)
 *
 * `@bulwark/resilience` is imported from its compiled `dist/` (the script builds it first), as a
 * user would run it; only this file goes through tsx. The last line is one JSON object of figures.
 */
import {
  bulkhead as cBulkhead,
  circuitBreaker as cBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleAll,
  retry as cRetry,
  SamplingBreaker,
  timeout as cTimeout,
  TimeoutStrategy,
  wrap,
} from 'cockatiel';
import OpossumBreaker from 'opossum';
import { bulkhead, circuitBreaker, pipeline, retry, timeout } from '@bulwark/resilience';
import { measure, table, type Contender } from './harness.js';

const op = async (): Promise<number> => 1;
const fail = (): void => {};

const bulwarkPipeline = pipeline({
  retry: retry({ maxAttempts: 3 }),
  breaker: circuitBreaker(),
  bulkhead: bulkhead({ maxConcurrent: 100 }),
  timeout: timeout(1_000),
});
const cockatielPipeline = wrap(
  cTimeout(1_000, TimeoutStrategy.Aggressive),
  cRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
  cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
  cBulkhead(100),
);
const cockatielCooperative = wrap(
  cTimeout(1_000, TimeoutStrategy.Cooperative),
  cRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
  cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
  cBulkhead(100),
);
const bulwarkBreaker = circuitBreaker();
const cockatielBreaker = cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
const cockatielSampling = cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) });
const opossum = new OpossumBreaker(op, { timeout: false, errorThresholdPercentage: 50, resetTimeout: 30_000, volumeThreshold: 20 });
const openBreaker = circuitBreaker({ name: 'open' });
openBreaker.isolate();
const cockatielOpen = cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
const cockatielIsolation = cockatielOpen.isolate();

const contenders: Contender[] = [
  { name: 'bare', call: op },
  { name: 'pipeline', call: () => bulwarkPipeline.execute(op) },
  { name: 'cockatiel pipeline', call: () => cockatielPipeline.execute(op) },
  { name: 'cockatiel coop.', call: () => cockatielCooperative.execute(op) },
  { name: 'breaker', call: () => bulwarkBreaker.execute(op) },
  { name: 'cockatiel breaker', call: () => cockatielBreaker.execute(op) },
  { name: 'cockatiel sampling', call: () => cockatielSampling.execute(op) },
  { name: 'opossum breaker', call: () => opossum.fire() },
  { name: 'open reject', call: () => openBreaker.execute(op).catch(fail) },
  { name: 'cockatiel open', call: () => cockatielOpen.execute(op).catch(fail) },
];

const quick = process.argv.includes('--quick');
const results = await measure(contenders, quick ? { iterations: 20_000, rounds: 3, warmup: 5_000 } : {});
cockatielIsolation.dispose();
opossum.shutdown();

const ns = (name: string): number => Math.round(results.find((r) => r.name === name)!.medianNs);
const figures = {
  bench: 'resilience',
  node: process.version,
  bare_ns: ns('bare'),
  pipeline_ns: ns('pipeline'),
  cockatiel_pipeline_ns: ns('cockatiel pipeline'),
  cockatiel_cooperative_pipeline_ns: ns('cockatiel coop.'),
  breaker_ns: ns('breaker'),
  cockatiel_breaker_ns: ns('cockatiel breaker'),
  cockatiel_sampling_breaker_ns: ns('cockatiel sampling'),
  opossum_breaker_ns: ns('opossum breaker'),
  open_reject_ns: ns('open reject'),
  cockatiel_open_reject_ns: ns('cockatiel open'),
  pipeline_vs_cockatiel: +(ns('pipeline') / ns('cockatiel pipeline')).toFixed(3),
  pipeline_vs_cockatiel_cooperative: +(ns('pipeline') / ns('cockatiel coop.')).toFixed(3),
  breaker_vs_cockatiel: +(ns('breaker') / ns('cockatiel breaker')).toFixed(3),
  breaker_vs_opossum: +(ns('breaker') / ns('opossum breaker')).toFixed(3),
};
console.log(table(results));
console.log('');
console.log(`pipeline: ${figures.pipeline_ns} ns vs cockatiel ${figures.cockatiel_pipeline_ns} ns (${figures.pipeline_vs_cockatiel}x; target <= 0.1x and < 2000 ns)`);
console.log(`breaker:  ${figures.breaker_ns} ns vs cockatiel ${figures.cockatiel_breaker_ns} ns, opossum ${figures.opossum_breaker_ns} ns`);
console.log(JSON.stringify(figures));
