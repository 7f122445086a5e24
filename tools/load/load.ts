/**
 * The load generator (issue #9): an open-model HTTP load driver for loopback
 * targets. See ./README.md and the contract in ./types.ts.
 *
 * - **Open model.** Each phase's arrivals are due on an absolute timeline
 *   (./plan.ts: evenly spaced at a constant rate, the integral of the linear
 *   rate on a ramp). The scheduler sleeps until the next due time and then
 *   issues *every* arrival whose time has passed, so an event loop that woke
 *   late is caught up rather than the schedule slipping; nothing waits for
 *   an answer before the next arrival.
 * - **Latency from the intended time.** Each request's latency runs from its
 *   arrival's due time (not from when it was issued) to the end of its
 *   response body, so the generator's own lateness and any queueing count
 *   against the system (no coordinated omission).
 * - **Bounded.** Phases bound the time, `maxRequests` the count, `maxInFlight`
 *   the outstanding requests (beyond it arrivals are dropped, not delayed),
 *   `timeoutMs` each request, and only loopback targets are driven.
 * - **`onPhase`** is awaited before a phase's first arrival, and the phase's
 *   timeline starts when it returns: time spent in `onPhase` shifts the rest
 *   of the run later instead of being absorbed as a burst of overdue arrivals.
 *   A run without `onPhase` has phases back to back on one timeline.
 */
import { Pool } from 'undici';
import type { LookupFunction } from 'node:net';
import { seededRandom } from '@bulwark/resilience/testing';
import { LoadPlanError, arrivalOffsetMs, makePlan, type Plan } from './plan.js';
import { terminalProgress, type ProgressWriter } from './progress.js';
import { PhaseAcc, histogram, percentileMs, record, round, summarize } from './stats.js';
import { checkTarget, type CheckedTarget } from './target.js';
import type { Answer, LoadOptions, LoadResult, Progress, RequestSpec, TimelinePoint } from './types.js';

export { LoadPlanError } from './plan.js';
export { LoadTargetError } from './target.js';
export type * from './types.js';

/**
 * Timers only: the scheduler sleeps with setTimeout to the next due time
 * (Node's timers have 1 ms granularity and never fire early) and then issues
 * everything due. Spinning on setImmediate for sub-millisecond precision was
 * measured and rejected: it kept a core busy (110 % CPU at 1–5k/s on this
 * 2-core machine), starving the target, and made latencies worse. See README
 * "Scheduler".
 */
/** Arrivals issued back to back (catching up) before the scheduler yields once to I/O. */
const BURST = 64;

interface Bucket {
  scheduled: number;
  ok: number;
  failed: number;
  dropped: number;
  /** Answers with a status (success or not). */
  answered: number;
  p50: number;
  p99: number;
}

const emptyBucket = (): Bucket => ({ scheduled: 0, ok: 0, failed: 0, dropped: 0, answered: 0, p50: 0, p99: 0 });

function defaultKind(spec: RequestSpec): string {
  const q = spec.path.indexOf('?');
  return `${spec.method} ${q === -1 ? spec.path : spec.path.slice(0, q)}`;
}

/** `ECONNRESET`, `UND_ERR_SOCKET`, ...: the error's code, its cause's, or its name. */
export function errorCode(error: unknown): string {
  if (typeof error !== 'object' || error === null) return 'ERROR';
  const e = error as { code?: unknown; name?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && e.code !== '') return e.code;
  if (typeof e.cause === 'object' && e.cause !== null) {
    const c = e.cause as { code?: unknown };
    if (typeof c.code === 'string' && c.code !== '') return c.code;
  }
  return typeof e.name === 'string' && e.name !== '' ? e.name : 'ERROR';
}

function pinnedLookup(target: CheckedTarget): LookupFunction {
  // Connections go to the addresses the loopback check resolved, never to a fresh resolution
  // (`all` is asked for by net's happy-eyeballs when a name has both families, e.g. localhost).
  const first = target.addresses[0]!;
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options.all === true) callback(null, target.addresses);
    else callback(null, first.address, first.family);
  }) as unknown as LookupFunction;
}

function encode(spec: RequestSpec): { headers: Record<string, string>; body: string | undefined } {
  const headers: Record<string, string> = { ...spec.headers };
  if (spec.body === undefined || typeof spec.body === 'string') return { headers, body: spec.body };
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  return { headers, body: JSON.stringify(spec.body) };
}

/**
 * Runs the phases against `options.target` and returns the figures. Throws
 * LoadPlanError (bad phases or options) or LoadTargetError (not loopback)
 * before anything is sent; rethrows what `onPhase` throws, after the
 * outstanding requests are done.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const plan: Plan = makePlan(options);
  if (typeof options.workload !== 'function') throw new LoadPlanError('must be a function', 'workload');
  const target = await checkTarget(options.target);
  const isSuccess = options.isSuccess ?? ((a: Answer) => a.status >= 200 && a.status < 400);
  const random = seededRandom(plan.seed);
  const pool = new Pool(target.origin, {
    connections: plan.connections,
    pipelining: 1,
    // timeoutMs is the only timeout (undici's own would otherwise end long requests as errors).
    headersTimeout: 0,
    bodyTimeout: 0,
    ...(target.literal ? {} : { connect: { lookup: pinnedLookup(target) } }),
  });

  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const phases = plan.phases.map((p) => new PhaseAcc(p.name));
  const interval = plan.intervalMs;
  const buckets: Bucket[] = [];
  const intervalLatency = histogram();
  let openBucket = 0;
  let inFlight = 0;
  let issued = 0;
  let currentPhase = 0;
  let stopped = false;
  let onIdle: (() => void) | undefined;
  let wake: (() => void) | undefined;
  let sleepTimer: NodeJS.Timeout | undefined;

  const bucketIndex = (t: number): number => Math.max(0, Math.floor((t - t0) / interval));
  const bucket = (i: number): Bucket => {
    while (buckets.length <= i) buckets.push(emptyBucket());
    return buckets[i]!;
  };
  const bucketAt = (t: number): Bucket => bucket(bucketIndex(t));
  /** Closes every bucket before the one holding `t`: their latency percentiles are final. */
  const rollTo = (t: number): void => {
    const i = bucketIndex(t);
    while (openBucket < i) {
      const b = bucket(openBucket);
      b.p50 = percentileMs(intervalLatency, 50);
      b.p99 = percentileMs(intervalLatency, 99);
      intervalLatency.reset();
      openBucket++;
    }
  };

  // Live progress: one report per interval, for the interval just closed.
  const writer: ProgressWriter | undefined = options.progress === true ? terminalProgress(plan.phases.length) : undefined;
  const report = typeof options.progress === 'function' ? options.progress : writer === undefined ? undefined : (p: Progress) => writer.write(p);
  let ticker: NodeJS.Timeout | undefined;
  let reported = 0;
  const emit = (index: number, elapsedMs: number): void => {
    if (report === undefined) return;
    const b = buckets[index] ?? emptyBucket();
    const widthMs = Math.max(1, Math.min(interval, elapsedMs - index * interval));
    report({
      phase: plan.phases[currentPhase]?.name ?? '',
      phaseIndex: currentPhase,
      elapsedMs: round(elapsedMs),
      offeredRate: round((b.scheduled * 1000) / widthMs),
      achievedRate: round((b.answered * 1000) / widthMs),
      errors: b.failed,
      inFlight,
      p99Ms: b.p99,
    });
  };
  const tick = (): void => {
    const now = performance.now();
    rollTo(now);
    while (reported < openBucket) emit(reported++, now - t0);
    ticker = setTimeout(tick, Math.max(1, t0 + (openBucket + 1) * interval - performance.now()));
    ticker.unref();
  };
  if (report !== undefined) {
    ticker = setTimeout(tick, interval);
    ticker.unref();
  }

  const complete = (acc: PhaseAcc, kind: string | undefined, due: number, outcome: { ok: boolean; status?: number; error?: string; timedOut?: boolean }): void => {
    const now = performance.now();
    const ms = now - due;
    rollTo(now);
    const b = bucketAt(now);
    acc.completed++;
    record(acc.latency, ms);
    record(intervalLatency, ms);
    const kindAcc = kind === undefined ? undefined : acc.kind(kind);
    if (kindAcc !== undefined) record(kindAcc.latency, ms);
    if (outcome.status !== undefined) {
      b.answered++;
      acc.statuses[outcome.status] = (acc.statuses[outcome.status] ?? 0) + 1;
    }
    if (outcome.ok) {
      acc.ok++;
      b.ok++;
      record(acc.okLatency, ms);
      if (kindAcc !== undefined) kindAcc.ok++;
      return;
    }
    acc.failed++;
    b.failed++;
    if (kindAcc !== undefined) kindAcc.failed++;
    if (outcome.timedOut === true) acc.timedOut++;
    else if (outcome.error !== undefined) acc.networkErrors[outcome.error] = (acc.networkErrors[outcome.error] ?? 0) + 1;
  };

  const perform = async (acc: PhaseAcc, index: number, due: number): Promise<void> => {
    // A timer per request, cleared when it completes (AbortSignal.timeout's cannot be, and would
    // keep rate × timeoutMs timers alive at high rates).
    const controller = new AbortController();
    const signal = controller.signal;
    const timer = setTimeout(() => controller.abort(), plan.timeoutMs);
    timer.unref();
    let kind: string | undefined;
    try {
      const spec = await options.workload({ index, phase: acc.name, random });
      kind = spec.kind ?? defaultKind(spec);
      acc.kind(kind).sent++;
      const { headers, body } = encode(spec);
      const res = await pool.request({ method: spec.method, path: spec.path, headers, body, signal });
      const text = await res.body.text();
      const answer: Answer = { status: res.statusCode, kind, headers: res.headers, body: text, request: spec };
      complete(acc, kind, due, { ok: isSuccess(answer), status: res.statusCode });
    } catch (error) {
      if (signal.aborted) complete(acc, kind, due, { ok: false, timedOut: true });
      else complete(acc, kind, due, { ok: false, error: kind === undefined ? 'EWORKLOAD' : errorCode(error) });
    } finally {
      clearTimeout(timer);
    }
  };

  const issue = (p: number, due: number): void => {
    const acc = phases[p]!;
    const now = performance.now();
    record(acc.lag, now - due);
    acc.scheduled++;
    bucketAt(due).scheduled++;
    const index = issued++;
    if (inFlight >= plan.maxInFlight) {
      acc.dropped++;
      acc.failed++;
      const b = bucketAt(now);
      b.dropped++;
      b.failed++;
      return;
    }
    acc.sent++;
    inFlight++;
    void perform(acc, index, due).finally(() => {
      inFlight--;
      if (inFlight === 0) onIdle?.();
    });
  };

  /** Resolves at `due` or later (or at once when stopped). */
  const sleepUntil = async (due: number): Promise<void> => {
    for (;;) {
      if (stopped) return;
      const gap = due - performance.now();
      if (gap <= 0) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        sleepTimer = setTimeout(resolve, Math.max(1, Math.ceil(gap)));
      });
      wake = undefined;
      if (sleepTimer !== undefined) clearTimeout(sleepTimer);
      sleepTimer = undefined;
    }
  };
  const yieldOnce = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted === true) stopped = true;

  let failure: unknown;
  let hasFailure = false;
  let timelineStart = t0;
  try {
    for (let p = 0; p < plan.phases.length; p++) {
      const phase = plan.phases[p]!;
      const acc = phases[p]!;
      if (stopped) {
        acc.startMs = performance.now() - t0;
        continue;
      }
      currentPhase = p;
      if (options.onPhase !== undefined) {
        await options.onPhase(phase, p);
        timelineStart = performance.now();
      }
      const start = timelineStart;
      acc.startMs = start - t0;
      acc.durationMs = phase.durationMs;
      let burst = 0;
      for (let k = 0; ; k++) {
        const offset = arrivalOffsetMs(phase, k);
        if (offset === undefined) break;
        if (issued >= plan.maxRequests) {
          stopped = true;
          acc.durationMs = offset;
          break;
        }
        const due = start + offset;
        if (due > performance.now()) {
          burst = 0;
          await sleepUntil(due);
        } else if (++burst >= BURST) {
          burst = 0;
          await yieldOnce();
        }
        if (stopped) {
          acc.durationMs = Math.min(phase.durationMs, Math.max(0, performance.now() - start));
          break;
        }
        issue(p, due);
      }
      // The count bound reached with the phase's last arrival: the run ends here.
      if (issued >= plan.maxRequests) stopped = true;
      if (stopped) continue;
      await sleepUntil(start + phase.durationMs);
      if (stopped) acc.durationMs = Math.min(phase.durationMs, Math.max(0, performance.now() - start));
      timelineStart = start + phase.durationMs;
    }
  } catch (error) {
    failure = error;
    hasFailure = true;
  } finally {
    options.signal?.removeEventListener('abort', stop);
    if (inFlight > 0) await new Promise<void>((resolve) => (onIdle = resolve));
    if (ticker !== undefined) clearTimeout(ticker);
    await pool.close();
  }

  const end = performance.now();
  rollTo(end + interval); // closes the last, partial bucket too
  const lastBucket = buckets.at(-1);
  if (buckets.length > 1 && lastBucket !== undefined && lastBucket.scheduled + lastBucket.ok + lastBucket.failed === 0) buckets.pop();
  for (; reported < buckets.length; reported++) emit(reported, Math.min(end - t0, (reported + 1) * interval));
  writer?.end();
  if (hasFailure) throw failure;

  const phaseStats = phases.map((acc) => acc.stats());
  const total = new PhaseAcc('total');
  for (const acc of phases) total.merge(acc);
  const first = phaseStats[0]!;
  const started = phaseStats.filter((s) => s.durationMs > 0 || s.scheduled > 0);
  const last = started.at(-1) ?? first;
  total.startMs = first.startMs;
  total.durationMs = last.startMs + last.durationMs - first.startMs;

  const phaseAt = (tMs: number): string => {
    let name = first.name;
    for (const s of phaseStats) if (s.startMs <= tMs && (s.durationMs > 0 || s.scheduled > 0)) name = s.name;
    return name;
  };
  const timeline: TimelinePoint[] = buckets.map((b, i) => ({
    tMs: i * interval,
    phase: phaseAt(i * interval),
    scheduled: b.scheduled,
    ok: b.ok,
    failed: b.failed,
    dropped: b.dropped,
    p50: b.p50,
    p99: b.p99,
  }));

  return {
    target: options.target,
    startedAt,
    durationMs: round(end - t0),
    seed: plan.seed,
    phases: phaseStats,
    total: total.stats(),
    timeline,
    schedulerLag: summarize(total.lag),
  };
}
