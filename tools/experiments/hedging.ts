/**
 * Experiment `hedging`: hedged requests against a heavy latency tail (Dean &
 * Barroso, "The Tail at Scale", CACM 2013).
 *
 * - The **dependency** is its own process (./dependency.ts, `tail` model): each
 *   request's latency is drawn from `seededRandom` — by default uniform in
 *   1–6 ms, except 1.5 % uniform in 100–2 000 ms — independently per request,
 *   as when slowness comes from transient causes on the server (a GC pause, a
 *   compaction, a queue behind a big request), not from the request itself.
 * - The **front** service calls it once per user request through a
 *   `@bulwark/resilience` pipeline: `plain` is a (generous, 5 s) timeout only;
 *   `hedged` adds `hedge` with the delay at the observed p95
 *   (`{ quantile: 0.95 }`, a `LatencyQuantile` of recent calls), one hedge at
 *   most, and a `HedgeBudget` of 10 % of requests plus 1/s. The first answer
 *   wins and the loser is aborted (its connection closed; the dependency drops it).
 * - The **load** is open-model (tools/load), default 200 requests/s: a warm-up
 *   (2 s, not measured; the quantile learns the latency there) then 30 s measured.
 *
 * Figures per configuration: p50/p90/p99/p99.9/max of the user requests, and
 * the extra load — calls the dependency received ÷ user requests — with the
 * bound the budget allows.
 */
import { hedge, pipeline, timeout, HedgeBudget, type HedgePolicy, type Policy } from '@bulwark/resilience';
import { runLoad } from '../load/load.js';
import type { LatencySummary, LoadResult, PhaseStats } from '../load/types.js';
import { barChart } from '../scenario/svg.js';
import { startDependency, type DependencyStats } from './dependency.js';
import { ratio, round, startFront, table } from './support.js';

export type HedgingConfig = 'plain' | 'hedged';
export const hedgingConfigs: readonly HedgingConfig[] = ['plain', 'hedged'];

export interface HedgingOptions {
  /** User requests per second. Default 200. */
  rate?: number;
  /** Warm-up and measured phase lengths, s. Default 2 and 30. */
  warmupS?: number;
  measureS?: number;
  /** Fast answers: uniform in [fastMinMs, fastMaxMs]. Default 1..6. */
  fastMinMs?: number;
  fastMaxMs?: number;
  /** Share of slow answers, uniform in [slowMinMs, slowMaxMs]. Default 0.015, 100..2 000. */
  slowShare?: number;
  slowMinMs?: number;
  slowMaxMs?: number;
  /** Quantile of recent latencies to hedge at. Default 0.95. */
  quantile?: number;
  /** Hedge budget: ratio of requests, and floor per second. Default 0.1 and 1. */
  budgetRatio?: number;
  budgetMinPerSecond?: number;
  /** Seed of the dependency's latencies and of the load. Default 1. */
  seed?: number;
  configs?: readonly HedgingConfig[];
}

export interface HedgingRow {
  config: HedgingConfig;
  /** User requests measured, and those that failed. */
  requests: number;
  failed: number;
  latency: LatencySummary;
  /** Calls the dependency received during the measured phase, ÷ user requests. */
  dependencyCalls: number;
  load: number;
  /** Hedges launched and won (measured phase); the hedge delay at the end (ms). */
  hedges: number;
  hedgesWon: number;
  hedgeDelayMs: number | null;
  /** Highest load the hedge budget allows: 1 + (ratio · requests + floor per window) / requests. */
  bound: number | null;
}

export interface HedgingResult {
  rate: number;
  warmupS: number;
  measureS: number;
  slowShare: number;
  fastMs: [number, number];
  slowMs: [number, number];
  quantile: number;
  budgetRatio: number;
  rows: HedgingRow[];
}

interface Settings {
  rate: number;
  warmupS: number;
  measureS: number;
  fastMinMs: number;
  fastMaxMs: number;
  slowShare: number;
  slowMinMs: number;
  slowMaxMs: number;
  quantile: number;
  budgetRatio: number;
  budgetMinPerSecond: number;
  seed: number;
}

function settings(o: HedgingOptions): Settings {
  return {
    rate: o.rate ?? 200,
    warmupS: o.warmupS ?? 2,
    measureS: o.measureS ?? 30,
    fastMinMs: o.fastMinMs ?? 1,
    fastMaxMs: o.fastMaxMs ?? 6,
    slowShare: o.slowShare ?? 0.015,
    slowMinMs: o.slowMinMs ?? 100,
    slowMaxMs: o.slowMaxMs ?? 2_000,
    quantile: o.quantile ?? 0.95,
    budgetRatio: o.budgetRatio ?? 0.1,
    budgetMinPerSecond: o.budgetMinPerSecond ?? 1,
    seed: o.seed ?? 1,
  };
}

const BUDGET_WINDOW_MS = 10_000;

/** Runs one configuration: a fresh dependency process and front, warm-up then the measured phase. */
export async function runHedgingConfig(config: HedgingConfig, options: HedgingOptions = {}): Promise<HedgingRow> {
  const s = settings(options);
  const dependency = await startDependency({ model: 'tail', fastMinMs: s.fastMinMs, fastMaxMs: s.fastMaxMs, slowShare: s.slowShare, slowMinMs: s.slowMinMs, slowMaxMs: s.slowMaxMs, seed: s.seed });
  const attemptTimeout = timeout(5_000);
  let hedgePolicy: HedgePolicy | undefined;
  let policy: Policy = attemptTimeout;
  const counts = { hedges: 0, won: 0, measuring: false };
  if (config === 'hedged') {
    const budget = new HedgeBudget({ ratio: s.budgetRatio, minHedgesPerSecond: s.budgetMinPerSecond, windowMs: BUDGET_WINDOW_MS });
    hedgePolicy = hedge({ delay: { quantile: s.quantile, initialMs: 10, minSamples: 50 }, maxHedges: 1, budget });
    hedgePolicy.on('hedge', () => void (counts.measuring && counts.hedges++));
    hedgePolicy.on('hedgeWon', () => void (counts.measuring && counts.won++));
    policy = pipeline({ timeout: attemptTimeout, hedge: hedgePolicy });
  }
  const front = await startFront(dependency.url, policy);
  let load: LoadResult;
  let stats: DependencyStats;
  try {
    load = await runLoad({
      target: front.url,
      phases: [
        { name: 'warmup', durationMs: s.warmupS * 1000, rate: s.rate },
        { name: 'measure', durationMs: s.measureS * 1000, rate: s.rate },
      ],
      workload: ({ phase }) => ({ method: 'GET', path: `/${phase}` }),
      seed: s.seed,
      connections: 1_024,
      timeoutMs: 10_000,
      onPhase: async (phase, index) => {
        if (index === 0) await dependency.start(Date.now());
        counts.measuring = phase.name === 'measure';
      },
    });
    stats = await dependency.stats();
  } finally {
    await front.close();
    await dependency.stop();
  }
  const measured = load.phases[1] as PhaseStats;
  // Calls are counted under the phase of the user request that caused them (the front passes the phase on in the path).
  const calls = stats.byTag.measure?.received ?? 0;
  const requests = measured.scheduled;
  const windows = Math.ceil((s.measureS * 1000) / BUDGET_WINDOW_MS);
  const floor = (s.budgetMinPerSecond * BUDGET_WINDOW_MS) / 1000;
  return {
    config,
    requests,
    failed: measured.failed,
    latency: roundSummary(measured.latency),
    dependencyCalls: calls,
    load: ratio(calls, requests),
    hedges: counts.hedges,
    hedgesWon: counts.won,
    hedgeDelayMs: hedgePolicy === undefined ? null : round(hedgePolicy.delayMs(), 2),
    // The budget grants at most ratio × (requests of its window) + floor in any window; the
    // warm-up's requests count in the first window too, so they are part of the allowance.
    bound: hedgePolicy === undefined ? null : round(1 + (s.budgetRatio * (requests + s.rate * s.warmupS) + floor * windows) / requests, 3),
  };
}

function roundSummary(l: LatencySummary): LatencySummary {
  return { count: l.count, min: round(l.min, 1), mean: round(l.mean, 1), p50: round(l.p50, 1), p90: round(l.p90, 1), p95: round(l.p95, 1), p99: round(l.p99, 1), p999: round(l.p999, 1), max: round(l.max, 1) };
}

export async function runHedging(options: HedgingOptions = {}): Promise<HedgingResult> {
  const s = settings(options);
  const rows: HedgingRow[] = [];
  for (const config of options.configs ?? hedgingConfigs) rows.push(await runHedgingConfig(config, options));
  return {
    rate: s.rate,
    warmupS: s.warmupS,
    measureS: s.measureS,
    slowShare: s.slowShare,
    fastMs: [s.fastMinMs, s.fastMaxMs],
    slowMs: [s.slowMinMs, s.slowMaxMs],
    quantile: s.quantile,
    budgetRatio: s.budgetRatio,
    rows,
  };
}

export function hedgingFigures(result: HedgingResult): Record<string, number | string | null> {
  const figures: Record<string, number | string | null> = { experiment: 'hedging', rate_per_s: result.rate, measure_s: result.measureS, slow_share: result.slowShare, quantile: result.quantile, budget_ratio: result.budgetRatio };
  for (const row of result.rows) {
    const key = row.config;
    figures[`${key}_requests`] = row.requests;
    figures[`${key}_p50_ms`] = row.latency.p50;
    figures[`${key}_p99_ms`] = row.latency.p99;
    figures[`${key}_p999_ms`] = row.latency.p999;
    figures[`${key}_load`] = row.load;
    if (row.config === 'hedged') {
      figures.hedged_hedges = row.hedges;
      figures.hedged_delay_ms = row.hedgeDelayMs;
      figures.hedged_load_bound = row.bound;
    }
  }
  return figures;
}

export function hedgingTable(result: HedgingResult): string {
  return [
    `hedging: ${result.rate} requests/s for ${result.measureS} s (after ${result.warmupS} s of warm-up); dependency ${result.fastMs[0]}–${result.fastMs[1]} ms, ` +
      `${result.slowShare * 100} % ${result.slowMs[0]}–${result.slowMs[1]} ms; hedge at the observed p${Math.round(result.quantile * 100)}, budget ${result.budgetRatio * 100} %`,
    '',
    table(
      ['configuration', 'requests', 'failed', 'p50 (ms)', 'p90 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'max (ms)', 'dependency calls / request', 'budget bound', 'hedges', 'hedges won', 'hedge delay (ms)'],
      'lrrrrrrrrrrrr',
      result.rows.map((r) => [r.config, r.requests, r.failed, r.latency.p50, r.latency.p90, r.latency.p99, r.latency.p999, r.latency.max, r.load, r.bound, r.hedges, r.hedgesWon, r.hedgeDelayMs]),
    ),
  ].join('\n');
}

export function hedgingCharts(result: HedgingResult): Record<string, string> {
  const quantiles: Array<[string, keyof LatencySummary]> = [
    ['p50', 'p50'],
    ['p90', 'p90'],
    ['p99', 'p99'],
    ['p99.9', 'p999'],
  ];
  return {
    'hedging-latency.svg': barChart({
      title: `User-request latency, with and without hedging at the observed p${Math.round(result.quantile * 100)}`,
      yLabel: 'ms (log scale)',
      yLog: true,
      groups: quantiles.map(([label, key]) => ({ label, bars: result.rows.map((r) => ({ name: r.config, value: r.latency[key] })) })),
    }),
  };
}
