/**
 * Experiment `metastable`: an overloaded dependency with a short outage. Do
 * naive retries keep it down after the outage is over (Bronson et al.,
 * "Metastable Failures in Distributed Systems", HotOS 2021), and do a retry
 * budget and a circuit breaker let it recover?
 *
 * - The **dependency** is its own process (./dependency.ts, `pool` model): a
 *   finite worker pool (default 8 workers × 40 ms = 200 requests/s) behind a
 *   FIFO queue, which keeps working on requests whose callers already gave up.
 * - The **front** service calls it once per user request through a
 *   `@bulwark/resilience` pipeline with a per-attempt timeout (default 200 ms):
 *   - `naive`: retry, 3 attempts, a constant 10 ms pause (no jitter, no budget);
 *   - `timeout-only`: no retry (the control: the outage's backlog alone);
 *   - `budget-breaker`: retry, 3 attempts, full-jitter backoff 20 ms..1 s, a
 *     `RetryBudget` (10 %, floor 1/s), and a circuit breaker (last 20 calls,
 *     opens at 50 % failures after 10 calls, 1 s open, 3 probes).
 * - The **load** is open-model (tools/load), default 150 requests/s — 75 % of
 *   the dependency's capacity — in three phases: `baseline` (10 s), `outage`
 *   (5 s: every worker stalls; requests are still queued) and `after` (30 s).
 *
 * Figures per configuration: goodput per phase; time to recover (from the
 * outage's end to the first of 3 one-second buckets in a row with goodput
 * ≥ 90 % of the baseline's; null if never within the run); load
 * amplification at the dependency (calls it received ÷ user requests, each
 * call counted under the phase of the user request that caused it) during and
 * after the outage; and the share of the dependency's work thrown away.
 */
import { circuitBreaker, pipeline, retry, timeout, RetryBudget, type CircuitState, type Policy } from '@bulwark/resilience';
import { seededRandom } from '@bulwark/resilience/testing';
import { runLoad } from '../load/load.js';
import type { LoadResult, PhaseStats } from '../load/types.js';
import { lineChart, type Band, type Series } from '../scenario/svg.js';
import { startDependency, type DependencyStats } from './dependency.js';
import { ratio, recoverySeconds, round, startFront, table } from './support.js';

export type MetastableConfig = 'naive' | 'timeout-only' | 'budget-breaker';
export const metastableConfigs: readonly MetastableConfig[] = ['naive', 'timeout-only', 'budget-breaker'];

export interface MetastableOptions {
  /** Dependency workers. Default 8. */
  workers?: number;
  /** Dependency service time per request, ms. Default 40 (capacity workers / serviceMs = 200/s). */
  serviceMs?: number;
  /** Dependency queue bound. Default 5 000. */
  queueLimit?: number;
  /** User requests per second. Default 150 (75 % of the default capacity). */
  rate?: number;
  /** Per-attempt timeout of the front's calls, ms. Default 200. */
  timeoutMs?: number;
  /** Attempts of a retrying configuration. Default 3. */
  maxAttempts?: number;
  /** Phase lengths, s. Default 10, 5, 30. */
  baselineS?: number;
  outageS?: number;
  afterS?: number;
  /** Seed of the retry jitter and the load. Default 1. */
  seed?: number;
  /** Configurations to run. Default all three. */
  configs?: readonly MetastableConfig[];
}

export interface MetastablePhase {
  name: string;
  /** User requests scheduled, successful answers per second, calls the dependency received. */
  requests: number;
  goodput: number;
  dependencyCalls: number;
  /** Dependency calls ÷ user requests. */
  amplification: number;
  /** Share of the requests the dependency finished whose caller had already gone. */
  wastedShare: number;
}

export interface MetastableRow {
  config: MetastableConfig;
  phases: MetastablePhase[];
  /** Seconds from the outage's end to recovery; null if not within the run. */
  recoveryS: number | null;
  /** Goodput over the last 5 s of the run, as a share of the baseline's. */
  finalShare: number;
  /** Longest dependency queue. */
  maxQueue: number;
  /** Retries the front made; times its breaker opened. */
  retries: number;
  breakerOpens: number;
  /** Goodput per second, and dependency calls received per second, from the start of the baseline. */
  goodputTimeline: Array<[number, number]>;
  callsTimeline: Array<[number, number]>;
  /** Breaker states with the time (s) each began. */
  breakerTimeline: Array<[number, CircuitState]>;
}

export interface MetastableResult {
  workers: number;
  serviceMs: number;
  capacity: number;
  rate: number;
  timeoutMs: number;
  maxAttempts: number;
  baselineS: number;
  outageS: number;
  afterS: number;
  rows: MetastableRow[];
}

interface Settings {
  workers: number;
  serviceMs: number;
  queueLimit: number;
  rate: number;
  timeoutMs: number;
  maxAttempts: number;
  baselineS: number;
  outageS: number;
  afterS: number;
  seed: number;
}

function settings(o: MetastableOptions): Settings {
  return {
    workers: o.workers ?? 8,
    serviceMs: o.serviceMs ?? 40,
    queueLimit: o.queueLimit ?? 5_000,
    rate: o.rate ?? 150,
    timeoutMs: o.timeoutMs ?? 200,
    maxAttempts: o.maxAttempts ?? 3,
    baselineS: o.baselineS ?? 10,
    outageS: o.outageS ?? 5,
    afterS: o.afterS ?? 30,
    seed: o.seed ?? 1,
  };
}

function policyFor(config: MetastableConfig, s: Settings, events: { retries: number; opens: number; states: Array<[number, CircuitState]> }, now: () => number): Policy {
  const attemptTimeout = timeout(s.timeoutMs);
  const random = seededRandom(s.seed);
  switch (config) {
    case 'timeout-only':
      return attemptTimeout;
    case 'naive': {
      const naive = retry({ maxAttempts: s.maxAttempts, backoff: { kind: 'constant', baseMs: 10, jitter: 'none' }, random });
      naive.on('retry', () => void events.retries++);
      return pipeline({ retry: naive, timeout: attemptTimeout });
    }
    case 'budget-breaker': {
      const budget = new RetryBudget({ ratio: 0.1, minRetriesPerSecond: 1 });
      const guarded = retry({ maxAttempts: s.maxAttempts, backoff: { baseMs: 20, capMs: 1_000, jitter: 'full' }, budget, random });
      guarded.on('retry', () => void events.retries++);
      const breaker = circuitBreaker({ window: { type: 'count', size: 20 }, minimumCalls: 10, failureRateThreshold: 50, openDuration: { baseMs: 1_000 }, halfOpenCalls: 3 });
      breaker.on('stateChange', (e) => {
        if (e.to === 'open') events.opens++;
        events.states.push([round(now() / 1000, 2), e.to]);
      });
      return pipeline({ retry: guarded, breaker, timeout: attemptTimeout });
    }
  }
}

/** Runs one configuration: a fresh dependency process and front, the three phases. */
export async function runMetastableConfig(config: MetastableConfig, options: MetastableOptions = {}): Promise<MetastableRow> {
  const s = settings(options);
  const dependency = await startDependency({ model: 'pool', workers: s.workers, serviceMs: s.serviceMs, queueLimit: s.queueLimit });
  let origin = performance.now();
  const events = { retries: 0, opens: 0, states: [[0, 'closed']] as Array<[number, CircuitState]> };
  const policy = policyFor(config, s, events, () => performance.now() - origin);
  const front = await startFront(dependency.url, policy);
  let load: LoadResult;
  let final: DependencyStats;
  try {
    load = await runLoad({
      target: front.url,
      phases: [
        { name: 'baseline', durationMs: s.baselineS * 1000, rate: s.rate },
        { name: 'outage', durationMs: s.outageS * 1000, rate: s.rate },
        { name: 'after', durationMs: s.afterS * 1000, rate: s.rate },
      ],
      workload: ({ phase }) => ({ method: 'GET', path: `/${phase}` }),
      seed: s.seed,
      connections: 4_096,
      maxInFlight: 20_000,
      timeoutMs: 30_000,
      intervalMs: 1000,
      onPhase: async (phase, index) => {
        if (index === 0) {
          origin = performance.now();
          await dependency.start(Date.now());
        }
        await dependency.setOutage(phase.name === 'outage');
      },
    });
    final = await dependency.stats();
  } finally {
    await front.close();
    await dependency.stop();
  }

  // Calls are counted under the phase of the user request that caused them (the front passes the phase on in the path).
  const phases = load.phases.map((p): MetastablePhase => {
    const tag = final.byTag[p.name] ?? { received: 0, served: 0, wasted: 0, cancelled: 0 };
    return {
      name: p.name,
      requests: p.scheduled,
      goodput: round(p.goodput, 1),
      dependencyCalls: tag.received,
      amplification: ratio(tag.received, p.scheduled),
      wastedShare: ratio(tag.wasted, tag.served + tag.wasted),
    };
  });
  const [baseline, outage, after] = load.phases as [PhaseStats, PhaseStats, PhaseStats];
  // The timeline's axis starts at the run's start; the baseline began a few ms later (its onPhase).
  const shift = baseline.startMs;
  const afterEnd = after.startMs + after.durationMs;
  const recoveryS = recoverySeconds(load.timeline, { fromMs: outage.startMs + outage.durationMs, toMs: afterEnd, intervalMs: 1000, baselineGoodput: baseline.goodput });
  // The last 5 whole one-second buckets of the run.
  const lastBuckets = load.timeline.filter((b) => b.tMs >= after.startMs && b.tMs + 1000 <= afterEnd + 1).slice(-5);
  const lastGoodput = lastBuckets.reduce((sum, b) => sum + b.ok, 0) / Math.max(1, lastBuckets.length);
  const perSecond = Math.round(1000 / final.bucketMs);
  const callsTimeline: Array<[number, number]> = [];
  for (let i = 0; (i + perSecond) * final.bucketMs <= afterEnd - shift + 1; i += perSecond) {
    const second = final.buckets.slice(i, i + perSecond).reduce((sum, b) => sum + b.received, 0);
    callsTimeline.push([round((i * final.bucketMs) / 1000, 1), second]);
  }
  return {
    config,
    phases,
    recoveryS,
    finalShare: ratio(lastGoodput, baseline.goodput),
    maxQueue: final.maxQueue,
    retries: events.retries,
    breakerOpens: events.opens,
    goodputTimeline: load.timeline.filter((b) => b.tMs + 1000 <= afterEnd + 1).map((b) => [b.tMs / 1000, b.ok]),
    callsTimeline,
    breakerTimeline: config === 'budget-breaker' ? events.states : [],
  };
}

export async function runMetastable(options: MetastableOptions = {}): Promise<MetastableResult> {
  const s = settings(options);
  const rows: MetastableRow[] = [];
  for (const config of options.configs ?? metastableConfigs) rows.push(await runMetastableConfig(config, options));
  return {
    workers: s.workers,
    serviceMs: s.serviceMs,
    capacity: round((s.workers * 1000) / s.serviceMs, 1),
    rate: s.rate,
    timeoutMs: s.timeoutMs,
    maxAttempts: s.maxAttempts,
    baselineS: s.baselineS,
    outageS: s.outageS,
    afterS: s.afterS,
    rows,
  };
}

const phase = (row: MetastableRow, name: string): MetastablePhase | undefined => row.phases.find((p) => p.name === name);

export function metastableFigures(result: MetastableResult): Record<string, number | string | null> {
  const figures: Record<string, number | string | null> = {
    experiment: 'metastable',
    capacity_per_s: result.capacity,
    rate_per_s: result.rate,
    timeout_ms: result.timeoutMs,
    outage_s: result.outageS,
    after_s: result.afterS,
  };
  for (const row of result.rows) {
    const key = row.config.replaceAll('-', '_');
    for (const name of ['baseline', 'outage', 'after']) figures[`${key}_goodput_${name}`] = phase(row, name)?.goodput ?? null;
    figures[`${key}_recovery_s`] = row.recoveryS;
    figures[`${key}_final_share`] = row.finalShare;
    figures[`${key}_amplification_outage`] = phase(row, 'outage')?.amplification ?? null;
    figures[`${key}_amplification_after`] = phase(row, 'after')?.amplification ?? null;
    figures[`${key}_wasted_after`] = phase(row, 'after')?.wastedShare ?? null;
  }
  return figures;
}

export function metastableTable(result: MetastableResult): string {
  return [
    `metastable: dependency ${result.workers} workers × ${result.serviceMs} ms (${result.capacity}/s), load ${result.rate}/s, attempt timeout ${result.timeoutMs} ms; ` +
      `baseline ${result.baselineS} s → outage ${result.outageS} s → after ${result.afterS} s`,
    '',
    table(
      ['configuration', 'goodput baseline /s', 'goodput outage /s', 'goodput after /s', 'recovery (s)', 'last 5 s vs baseline', 'amplification outage', 'amplification after', 'wasted after', 'max queue', 'retries', 'breaker opens'],
      'lrrrrrrrrrrr',
      result.rows.map((r) => [
        r.config,
        phase(r, 'baseline')?.goodput,
        phase(r, 'outage')?.goodput,
        phase(r, 'after')?.goodput,
        r.recoveryS ?? 'never',
        `${Math.round(r.finalShare * 100)} %`,
        phase(r, 'outage')?.amplification,
        phase(r, 'after')?.amplification,
        `${Math.round((phase(r, 'after')?.wastedShare ?? 0) * 100)} %`,
        r.maxQueue,
        r.retries,
        r.breakerOpens,
      ]),
    ),
  ].join('\n');
}

export function metastableCharts(result: MetastableResult): Record<string, string> {
  const bands: Band[] = [{ from: result.baselineS, to: result.baselineS + result.outageS, label: 'outage' }];
  const goodput: Series[] = result.rows.map((r) => ({ name: r.config, points: r.goodputTimeline }));
  goodput.push({ name: 'capacity', points: [[0, result.capacity], [result.baselineS + result.outageS + result.afterS, result.capacity]], dashed: true });
  const calls: Series[] = result.rows.map((r) => ({ name: r.config, points: r.callsTimeline }));
  calls.push({ name: 'capacity', points: [[0, result.capacity], [result.baselineS + result.outageS + result.afterS, result.capacity]], dashed: true });
  return {
    'metastable-goodput.svg': lineChart({ title: `Goodput per second (load ${result.rate}/s, dependency capacity ${result.capacity}/s)`, xLabel: 'time (s)', yLabel: 'successful requests / s', series: goodput, bands, step: true }),
    'metastable-dependency-calls.svg': lineChart({ title: 'Calls reaching the dependency per second', xLabel: 'time (s)', yLabel: 'calls / s', series: calls, bands, step: true }),
  };
}
