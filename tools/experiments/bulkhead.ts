/**
 * Experiment `bulkhead`: the shop's product page while recommendations hang,
 * with and without bulkheads.
 *
 * A real monolith shop (apps/shop, in a temp dir, through the test harness)
 * serves `GET /api/product-page/:sku`, which calls catalog, pricing, inventory
 * and recommendations over loopback, each through its own bulkhead and its own
 * HTTP client (an undici pool of its own, a per-attempt timeout of
 * `productPage.timeoutMs` = 1 s, a circuit breaker with the client's
 * defaults); recommendations fall back to the last good answer.
 *
 * - `bulkheads`: the shop's default slots (catalog 20, pricing 20, inventory 10,
 *   recommendations 5; as many queued, for at most 100 ms);
 * - `no-bulkheads`: the same code with 10 000 slots each, which never bind.
 *
 * Open-model load (tools/load, default 50 pages/s) in two phases: `normal`
 * (10 s, after 3 s of warm-up that is not reported — and, before the first
 * configuration, 3 s on a throwaway shop to warm the process; recommendations answer in
 * 30 ms) and `hang` (20 s; every call to
 * recommendations hangs — through the shop's fault admin API when it has one,
 * else by a shop started with a recommendations latency far above the page
 * timeout). Figures per configuration and phase: page p50/p90/p99, the share
 * of pages that waited for the recommendations timeout, how the
 * recommendations were answered (live / last good / none), the p99 of the
 * page's calls to each dependency and the most in flight at once (timed in
 * the shop's process from undici's diagnostics channels: from the call's
 * dispatch on a connection to its last byte or error), and the event loop's
 * p99 delay.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startTestShop, type TestShop } from '../../apps/shop/src/invariants/harness.js';
import { runLoad } from '../load/load.js';
import type { Answer, LoadPhase, LoadResult, PhaseStats } from '../load/types.js';
import { barChart, lineChart, type Series } from '../scenario/svg.js';
import { percentile, round, table } from './support.js';

export type BulkheadConfig = 'bulkheads' | 'no-bulkheads';
export const bulkheadConfigs: readonly BulkheadConfig[] = ['bulkheads', 'no-bulkheads'];
export const DEPENDENCIES = ['catalog', 'pricing', 'inventory', 'recommendations'] as const;
export type DependencyName = (typeof DEPENDENCIES)[number];

export interface BulkheadOptions {
  /** Product pages per second. Default 50. */
  rate?: number;
  /** Phase lengths, s. Default 3 (warm-up, not reported), 10 and 20. */
  warmupS?: number;
  normalS?: number;
  hangS?: number;
  /** The page's per-call timeout (`productPage.timeoutMs`). Default 1 000. */
  timeoutMs?: number;
  /** Recommendations latency when they answer (`recommendations.latencyMs`). Default 30. */
  latencyMs?: number;
  /** Recommendations slots with bulkheads (`productPage.bulkheads.recommendations`). Default 5 (the shop's). */
  slots?: number;
  /** `1`: make recommendations hang by configuration even when the fault admin API is there. Default 0. */
  configHang?: number;
  seed?: number;
  configs?: readonly BulkheadConfig[];
}

export interface DependencyCalls {
  calls: number;
  failed: number;
  p50: number;
  p99: number;
  /** Most calls on the wire at once (a client's pool has 32 connections: below that, no call waited for one). */
  maxInFlight: number;
}

export interface BulkheadPhase {
  name: string;
  pages: number;
  ok: number;
  p50: number;
  p90: number;
  p99: number;
  /** Share of pages that took at least 95 % of the page timeout: those that waited for a recommendations timeout. */
  slowShare: number;
  /** How the recommendations of the successful pages were answered. */
  sources: Record<string, number>;
  dependencies: Record<DependencyName, DependencyCalls>;
  /** Event-loop delay p99 of the shop's (and generator's) process, ms. */
  loopDelayP99: number;
}

export interface BulkheadRow {
  config: BulkheadConfig;
  /** How the hang was made: `fault` (admin API) or `config` (a second shop with a long recommendations latency). */
  hang: 'fault' | 'config';
  phases: BulkheadPhase[];
  /** Page p99 per second of the run (s from the start of `normal`). */
  p99Timeline: Array<[number, number]>;
}

export interface BulkheadResult {
  rate: number;
  normalS: number;
  hangS: number;
  timeoutMs: number;
  latencyMs: number;
  slots: number;
  rows: BulkheadRow[];
}

interface Settings {
  rate: number;
  warmupS: number;
  normalS: number;
  hangS: number;
  timeoutMs: number;
  latencyMs: number;
  slots: number;
  configHang: boolean;
  seed: number;
}

function settings(o: BulkheadOptions): Settings {
  return {
    rate: o.rate ?? 50,
    warmupS: o.warmupS ?? 3,
    normalS: o.normalS ?? 10,
    hangS: o.hangS ?? 20,
    timeoutMs: o.timeoutMs ?? 1_000,
    latencyMs: o.latencyMs ?? 30,
    slots: o.slots ?? 5,
    configHang: (o.configHang ?? 0) !== 0,
    seed: o.seed ?? 1,
  };
}

type Timed = DependencyName | 'page';

const PATHS: Array<[string, Timed]> = [
  ['/api/product-page/', 'page'],
  ['/api/catalog/products/', 'catalog'],
  ['/api/catalog/prices/', 'pricing'],
  ['/api/inventory/stock/', 'inventory'],
  ['/api/recommendations/for/', 'recommendations'],
];

interface UndiciRequest {
  path: string;
}

/**
 * Times every HTTP request this process makes to the shop's dependencies,
 * from undici's diagnostics channels: from the request's creation (before it
 * waits for a connection) to its last byte or its error.
 */
class CallTimer {
  phase = '';
  private readonly started = new WeakMap<object, { t: number; dep: Timed; phase: string }>();
  private readonly samples = new Map<string, { ms: number[]; failed: number }>();
  private readonly inFlight = new Map<Timed, number>();
  /** Most calls in flight at once, by `phase:dependency`. */
  readonly maxInFlight = new Map<string, number>();
  private readonly onCreate = (message: unknown): void => {
    const request = (message as { request: UndiciRequest }).request;
    const match = PATHS.find(([prefix]) => request.path.startsWith(prefix));
    if (match === undefined) return;
    this.started.set(request, { t: performance.now(), dep: match[1], phase: this.phase });
    const n = (this.inFlight.get(match[1]) ?? 0) + 1;
    this.inFlight.set(match[1], n);
    const key = `${this.phase}:${match[1]}`;
    this.maxInFlight.set(key, Math.max(this.maxInFlight.get(key) ?? 0, n));
  };
  private readonly onDone = (failed: boolean) => (message: unknown): void => {
    const request = (message as { request: UndiciRequest }).request;
    const start = this.started.get(request);
    if (start === undefined) return;
    this.started.delete(request);
    this.inFlight.set(start.dep, (this.inFlight.get(start.dep) ?? 1) - 1);
    const key = `${start.phase}:${start.dep}`;
    let entry = this.samples.get(key);
    if (entry === undefined) this.samples.set(key, (entry = { ms: [], failed: 0 }));
    entry.ms.push(performance.now() - start.t);
    if (failed) entry.failed++;
  };
  private readonly onTrailers = this.onDone(false);
  private readonly onError = this.onDone(true);

  constructor() {
    subscribe('undici:request:create', this.onCreate);
    subscribe('undici:request:trailers', this.onTrailers);
    subscribe('undici:request:error', this.onError);
  }

  /** Share of the phase's calls to `dep` that took at least `ms`. */
  shareAtLeast(phase: string, dep: Timed, ms: number): number {
    const entry = this.samples.get(`${phase}:${dep}`);
    if (entry === undefined || entry.ms.length === 0) return 0;
    return round(entry.ms.filter((x) => x >= ms).length / entry.ms.length, 3);
  }

  stats(phase: string, dep: Timed): DependencyCalls {
    const entry = this.samples.get(`${phase}:${dep}`) ?? { ms: [], failed: 0 };
    return { calls: entry.ms.length, failed: entry.failed, p50: round(percentile(entry.ms, 50), 1), p99: round(percentile(entry.ms, 99), 1), maxInFlight: this.maxInFlight.get(`${phase}:${dep}`) ?? 0 };
  }

  close(): void {
    unsubscribe('undici:request:create', this.onCreate);
    unsubscribe('undici:request:trailers', this.onTrailers);
    unsubscribe('undici:request:error', this.onError);
  }
}

const INTERNAL_KEY = 'x-shop-internal-key';
const SKUS = ['KB-001', 'MS-002', 'MN-003', 'HS-004', 'CB-005', 'LE-006'];
const FAULT_ID = 'experiment-bulkhead-recommendations-hang';

/** True when the shop serves the fault admin API (`GET /admin/faults` with the internal key). */
async function hasFaultAdmin(t: TestShop): Promise<boolean> {
  const res = await fetch(`${t.shop.url}/admin/faults`, { headers: { [INTERNAL_KEY]: t.target.internalKey }, signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status === 200;
}

async function putFault(t: TestShop, on: boolean): Promise<void> {
  const res = await fetch(`${t.shop.url}/admin/faults${on ? `/${FAULT_ID}` : ''}`, {
    method: on ? 'PUT' : 'DELETE',
    headers: { [INTERNAL_KEY]: t.target.internalKey, ...(on ? { 'content-type': 'application/json' } : {}) },
    signal: AbortSignal.timeout(5_000),
    ...(on ? { body: JSON.stringify({ kind: 'hang', direction: 'inbound', match: { module: 'recommendations' } }) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`fault admin: ${res.status} ${text}`);
}

/**
 * Closes a shop once its load is over. Connections its own clients left open
 * after a hang (the recommendations calls they gave up on) would otherwise hold
 * its graceful close for up to the kit's drain bound (10 s): they are cut first.
 */
async function closeShop(t: TestShop): Promise<void> {
  t.shop.app.server.closeAllConnections();
  await t.close();
}

function shopOverrides(config: BulkheadConfig, s: Settings, latencyMs: number): Record<string, unknown> {
  const big = 10_000;
  const bulkheads = config === 'bulkheads' ? { catalog: 20, pricing: 20, inventory: 10, recommendations: s.slots } : { catalog: big, pricing: big, inventory: big, recommendations: big };
  return { productPage: { bulkheads, timeoutMs: s.timeoutMs }, recommendations: { latencyMs, errorRate: 0 } };
}

/** Runs one configuration on a fresh shop (two when the hang has to come from configuration). */
export async function runBulkheadConfig(config: BulkheadConfig, options: BulkheadOptions = {}): Promise<BulkheadRow> {
  const s = settings(options);
  const timer = new CallTimer();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const loopP99 = new Map<string, number>();
  const sources = new Map<string, Record<string, number>>();
  let phase = '';
  const isSuccess = (answer: Answer): boolean => {
    if (answer.status !== 200) return false;
    let source = 'unreadable';
    try {
      const value = (JSON.parse(answer.body) as { recommendations?: { source?: unknown } }).recommendations?.source;
      source = typeof value === 'string' ? value : 'missing';
    } catch {
      // counted as unreadable
    }
    const tally = sources.get(phase) ?? {};
    tally[source] = (tally[source] ?? 0) + 1;
    sources.set(phase, tally);
    return true;
  };
  const enter = (name: string): void => {
    if (phase !== '') loopP99.set(phase, round(loop.percentile(99) / 1e6, 1));
    loop.reset();
    phase = timer.phase = name;
  };
  const drive = (t: TestShop, phases: LoadPhase[], onPhase: (p: LoadPhase) => Promise<void>): Promise<LoadResult> =>
    runLoad({
      target: t.shop.url,
      phases,
      workload: ({ index }) => ({ method: 'GET', path: `/api/product-page/${SKUS[index % SKUS.length] ?? 'KB-001'}`, kind: 'product-page' }),
      isSuccess,
      seed: s.seed,
      connections: 1_024,
      timeoutMs: 10_000,
      onPhase: async (p) => {
        enter(p.name);
        await onPhase(p);
      },
    });
  const warmup: LoadPhase[] = s.warmupS > 0 ? [{ name: 'warmup', durationMs: s.warmupS * 1000, rate: s.rate }] : [];
  const normal: LoadPhase = { name: 'normal', durationMs: s.normalS * 1000, rate: s.rate };
  const hang: LoadPhase = { name: 'hang', durationMs: s.hangS * 1000, rate: s.rate };

  const results: Array<{ load: LoadResult; offsetS: number }> = [];
  let how: 'fault' | 'config' = 'fault';
  loop.enable();
  try {
    const first = await startTestShop(shopOverrides(config, s, s.latencyMs), 'bulwark-exp-bulkhead-');
    try {
      how = !s.configHang && (await hasFaultAdmin(first)) ? 'fault' : 'config';
      if (how === 'fault') {
        const load = await drive(first, [...warmup, normal, hang], async (p) => {
          if (p.name === 'hang') await putFault(first, true);
        });
        results.push({ load, offsetS: -s.warmupS });
        await putFault(first, false);
      } else {
        results.push({ load: await drive(first, [...warmup, normal], () => Promise.resolve()), offsetS: -s.warmupS });
      }
    } finally {
      await closeShop(first);
    }
    if (how === 'config') {
      // A recommendations latency of 3× the page timeout: the page gives up on every call, as on a hang.
      const second = await startTestShop(shopOverrides(config, s, s.timeoutMs * 3), 'bulwark-exp-bulkhead-');
      try {
        results.push({ load: await drive(second, [hang], () => Promise.resolve()), offsetS: s.normalS });
      } finally {
        await closeShop(second);
      }
    }
    enter('');
  } finally {
    loop.disable();
    timer.close();
  }

  const phases: BulkheadPhase[] = [];
  const p99Timeline: Array<[number, number]> = [];
  for (const { load, offsetS } of results) {
    for (const p of load.phases) if (p.name !== 'warmup') phases.push(phaseFigures(p, s, timer, sources.get(p.name) ?? {}, loopP99.get(p.name) ?? 0));
    const end = (load.phases.at(-1)?.startMs ?? 0) + (load.phases.at(-1)?.durationMs ?? 0);
    for (const b of load.timeline) if (b.tMs + 1000 <= end + 1 && offsetS + b.tMs / 1000 >= 0) p99Timeline.push([offsetS + b.tMs / 1000, b.p99]);
  }
  return { config, hang: how, phases, p99Timeline };
}

function phaseFigures(p: PhaseStats, s: Settings, timer: CallTimer, sources: Record<string, number>, loopDelayP99: number): BulkheadPhase {
  const dependencies = Object.fromEntries(DEPENDENCIES.map((d) => [d, timer.stats(p.name, d)])) as Record<DependencyName, DependencyCalls>;
  return {
    name: p.name,
    pages: p.scheduled,
    ok: p.ok,
    p50: round(p.latency.p50, 1),
    p90: round(p.latency.p90, 1),
    p99: round(p.latency.p99, 1),
    slowShare: timer.shareAtLeast(p.name, 'page', s.timeoutMs * 0.95),
    sources,
    dependencies,
    loopDelayP99,
  };
}

/**
 * Drives a throwaway shop for `warmupS` at the experiment's rate, so that the
 * first configuration does not pay for the process's cold start (JIT, module
 * loading) that the ones after it would not.
 */
async function warmProcess(s: Settings): Promise<void> {
  const t = await startTestShop(shopOverrides('no-bulkheads', s, s.latencyMs), 'bulwark-exp-bulkhead-');
  try {
    await runLoad({ target: t.shop.url, phases: [{ name: 'warmup', durationMs: s.warmupS * 1000, rate: s.rate }], workload: ({ index }) => ({ method: 'GET', path: `/api/product-page/${SKUS[index % SKUS.length] ?? 'KB-001'}` }), seed: s.seed, connections: 1_024 });
  } finally {
    await closeShop(t);
  }
}

export async function runBulkhead(options: BulkheadOptions = {}): Promise<BulkheadResult> {
  const s = settings(options);
  const rows: BulkheadRow[] = [];
  if (s.warmupS > 0) await warmProcess(s);
  for (const config of options.configs ?? bulkheadConfigs) rows.push(await runBulkheadConfig(config, options));
  return { rate: s.rate, normalS: s.normalS, hangS: s.hangS, timeoutMs: s.timeoutMs, latencyMs: s.latencyMs, slots: s.slots, rows };
}

const phaseOf = (row: BulkheadRow, name: string): BulkheadPhase | undefined => row.phases.find((p) => p.name === name);

export function bulkheadFigures(result: BulkheadResult): Record<string, number | string | null> {
  const figures: Record<string, number | string | null> = { experiment: 'bulkhead', rate_per_s: result.rate, timeout_ms: result.timeoutMs, hang_s: result.hangS, hang: result.rows[0]?.hang ?? null };
  for (const row of result.rows) {
    const key = row.config.replaceAll('-', '_');
    for (const name of ['normal', 'hang']) {
      const p = phaseOf(row, name);
      figures[`${key}_${name}_page_p50_ms`] = p?.p50 ?? null;
      figures[`${key}_${name}_page_p99_ms`] = p?.p99 ?? null;
    }
    const h = phaseOf(row, 'hang');
    figures[`${key}_hang_page_p90_ms`] = h?.p90 ?? null;
    figures[`${key}_hang_slow_share`] = h?.slowShare ?? null;
    for (const d of ['catalog', 'pricing', 'inventory'] as const) figures[`${key}_hang_${d}_p99_ms`] = h?.dependencies[d].p99 ?? null;
    figures[`${key}_hang_recs_calls`] = h?.dependencies.recommendations.calls ?? null;
    figures[`${key}_hang_recs_max_in_flight`] = h?.dependencies.recommendations.maxInFlight ?? null;
  }
  return figures;
}

export function bulkheadTable(result: BulkheadResult): string {
  const rows = result.rows.flatMap((r) =>
    r.phases.map((p) => [
      r.config,
      p.name,
      p.pages,
      p.ok,
      p.p50,
      p.p90,
      p.p99,
      `${round(p.slowShare * 100, 1)} %`,
      Object.entries(p.sources)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
      p.dependencies.catalog.p99,
      p.dependencies.pricing.p99,
      p.dependencies.inventory.p99,
      `${p.dependencies.recommendations.calls} / ${p.dependencies.recommendations.p99}`,
      DEPENDENCIES.map((d) => p.dependencies[d].maxInFlight).join(' / '),
      p.loopDelayP99,
    ]),
  );
  return [
    `bulkhead: product page at ${result.rate}/s, page timeout ${result.timeoutMs} ms, recommendations ${result.latencyMs} ms then hanging ` +
      `(${result.rows[0]?.hang === 'config' ? 'by configuration: a second shop' : 'fault admin API'}); recommendations slots with bulkheads: ${result.slots}`,
    '',
    table(
      ['configuration', 'phase', 'pages', 'ok', 'page p50', 'page p90', 'page p99', 'pages ≥ 0.95 × timeout', 'recommendations', 'catalog p99', 'pricing p99', 'inventory p99', 'recs calls / p99', 'max in flight c/p/i/r', 'loop delay p99'],
      'llrrrrrrlrrrrrr',
      rows,
    ),
    '',
    'latencies in ms; dependency calls timed in the shop process from their dispatch on a connection to the last byte or error (a call waiting for one of its pool\'s 32 connections is not timed until it gets one)',
  ].join('\n');
}

export function bulkheadCharts(result: BulkheadResult): Record<string, string> {
  const series: Series[] = result.rows.map((r) => ({ name: r.config, points: r.p99Timeline }));
  series.push({ name: 'page timeout', points: [[0, result.timeoutMs], [result.normalS + result.hangS, result.timeoutMs]], dashed: true });
  const groups = result.rows.map((r) => {
    const h = phaseOf(r, 'hang');
    return {
      label: r.config,
      bars: [
        { name: 'page p50', value: h?.p50 ?? 0 },
        { name: 'page p99', value: h?.p99 ?? 0 },
        ...(['catalog', 'pricing', 'inventory'] as const).map((d) => ({ name: `${d} p99`, value: h?.dependencies[d].p99 ?? 0 })),
      ],
    };
  });
  return {
    'bulkhead-page-p99.svg': lineChart({
      title: 'Product page p99 per second',
      xLabel: 'time (s)',
      yLabel: 'ms',
      series,
      bands: [{ from: result.normalS, to: result.normalS + result.hangS, label: 'recommendations hang' }],
      step: true,
    }),
    'bulkhead-hang.svg': barChart({ title: 'While recommendations hang: page and dependency-call latency', yLabel: 'ms (log scale)', yLog: true, groups }),
  };
}

