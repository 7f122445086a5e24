/**
 * The scenario report: figures per phase from the load generator, counter
 * deltas per phase from the sampled `/metrics` (attempts per hop, retries,
 * breaker transitions, saga outcomes), the breaker and SLO timelines from the
 * background samples, SLO burn per phase, alerts, fault counts, and the time
 * to recover after the last fault window (README.md, "Time to recover").
 */
import type { LatencySummary, LoadResult, PhaseStats } from '../load/types.js';
import type { FaultStats } from './faults.js';
import type { AlertRecord, Snapshot } from './sampler.js';
import type { FaultRule, RecoverySpec, Scenario } from './scenario.js';

export interface PhaseReport {
  name: string;
  startMs: number;
  durationMs: number;
  faults: string[];
  offeredRate: number;
  scheduled: number;
  sent: number;
  ok: number;
  failed: number;
  dropped: number;
  timedOut: number;
  goodput: number;
  errorRate: number;
  latency: Pick<LatencySummary, 'count' | 'mean' | 'p50' | 'p95' | 'p99' | 'p999' | 'max'>;
  okLatencyP99: number;
  statuses: Record<string, number>;
  networkErrors: Record<string, number>;
  byKind: Record<string, { sent: number; ok: number; failed: number; p50: number; p99: number }>;
}

/** A row of a per-phase table: one value per phase (in phase order). */
export interface PerPhase {
  name: string;
  values: number[];
}

export interface HopReport {
  name: string;
  from: string;
  to: string;
  /** Calls counted at `from` and at `to` per phase, and `to / from` (null when `from` is 0). */
  fromCalls: number[];
  toCalls: number[];
  perRequest: (number | null)[];
}

export interface BreakerReport {
  policy: string;
  /** Sampled state over time: `[ms from the start, state]` (0 closed, 1 open, 2 half-open, 3 isolated). */
  timeline: [number, number][];
  /** State changes seen between samples. */
  changes: { atMs: number; from: number; to: number }[];
  /** Transitions counted by the process per phase (exact, even when sampling missed them). */
  transitions: number[];
  /** Calls refused by the policy per phase. */
  rejections: number[];
  leftClosed: boolean;
}

export interface SloReport {
  name: string;
  objective: number;
  /** Per phase: events and bad events in the phase, the phase's own burn rate (bad fraction / allowed fraction), and the budget left at its end. */
  phases: { events: number; bad: number; burnRate: number | null; remainingAtEnd: number | null; burn5mAtEnd: number | null; burn1hAtEnd: number | null }[];
  /** Budget left (fraction) over time: `[ms, fraction]`. */
  budgetTimeline: [number, number][];
  /** The SLO's counts and budget left when the run started (the engine's whole window). */
  atStart: { events: number; bad: number; remaining: number } | null;
  /** Budget fraction spent during the run (start − end). */
  budgetSpent: number | null;
  alerts: { severity: string; firedAtMs: number; resolvedAtMs: number | null; budgetRemaining: number }[];
}

export interface RecoveryReport {
  /** End of the last phase with faults, ms from the start (null: no fault in the scenario). */
  faultEndMs: number | null;
  baseline: { phases: string[]; goodput: number; errorRate: number; buckets: number } | null;
  thresholds: RecoverySpec;
  /** Time from the fault's end to the start of the first of `buckets` consecutive healthy buckets; null when that never happened in the run. */
  recoveredAfterMs: number | null;
  note: string;
}

export interface ScenarioReport {
  scenario: {
    name: string;
    description: string;
    file: string;
    maxRate: number;
    seed: number;
    intervalMs: number;
    workload: Scenario['workload'];
    faults: Record<string, FaultRule>;
  };
  target: string;
  startedAt: string;
  durationMs: number;
  phases: PhaseReport[];
  total: PhaseReport;
  /** Per timeline bucket: offered/ok/failed per second and latency percentiles (ms) of what completed in it. */
  timeline: { tMs: number; phase: string; offered: number; ok: number; failed: number; p50: number; p99: number }[];
  faultWindows: { fromMs: number; toMs: number; faults: string[] }[];
  recovery: RecoveryReport;
  /** Per phase: the requests the load generator sent (the denominator of `perUserRequest`). */
  userRequests: number[];
  hops: HopReport[];
  /** Served requests by route per phase (every route that served any). */
  routes: PerPhase[];
  /** Outgoing requests by dependency per phase. */
  dependencies: PerPhase[];
  retries: PerPhase[];
  giveUps: PerPhase[];
  sagas: PerPhase[];
  breakers: BreakerReport[];
  slos: SloReport[];
  faults: { name: string; rule: FaultRule; phases: string[]; stats: FaultStats | null }[];
  notes: string[];
}

const r3 = (n: number): number => Math.round(n * 1000) / 1000;

function phaseReport(p: PhaseStats, faults: string[]): PhaseReport {
  const byKind: PhaseReport['byKind'] = {};
  for (const [k, s] of Object.entries(p.byKind)) byKind[k] = { sent: s.sent, ok: s.ok, failed: s.failed, p50: s.latency.p50, p99: s.latency.p99 };
  return {
    name: p.name,
    startMs: p.startMs,
    durationMs: p.durationMs,
    faults,
    offeredRate: p.offeredRate,
    scheduled: p.scheduled,
    sent: p.sent,
    ok: p.ok,
    failed: p.failed,
    dropped: p.dropped,
    timedOut: p.timedOut,
    goodput: p.goodput,
    errorRate: p.errorRate,
    latency: { count: p.latency.count, mean: p.latency.mean, p50: p.latency.p50, p95: p.latency.p95, p99: p.latency.p99, p999: p.latency.p999, max: p.latency.max },
    okLatencyP99: p.okLatency.p99,
    statuses: p.statuses,
    networkErrors: p.networkErrors,
    byKind,
  };
}

export interface Bucket {
  tMs: number;
  ok: number;
  failed: number;
}

/**
 * Time to recover (README.md): the baseline is the buckets entirely inside
 * `[baseline.fromMs, baseline.toMs)` (the first bucket of the run left out when
 * at least three remain: warm-up); a bucket after `faultEndMs` (or holding it,
 * with at most half of it before) is healthy when its goodput is at least
 * `goodputRatio` × the baseline's and its error rate at most the baseline's +
 * `errorRateSlack`; recovered = the start of the first of `buckets`
 * consecutive healthy ones minus `faultEndMs`, at least 0 (0 when the first
 * bucket after the fault is already healthy). Only whole buckets count.
 */
export function timeToRecover(o: { buckets: readonly Bucket[]; intervalMs: number; baseline: { fromMs: number; toMs: number }; faultEndMs: number; endMs: number; spec: RecoverySpec }): { recoveredAfterMs: number | null; goodput: number; errorRate: number; baselineBuckets: number } {
  const { intervalMs, spec } = o;
  const eps = 1e-6;
  let base = o.buckets.filter((b) => b.tMs >= o.baseline.fromMs - eps && b.tMs + intervalMs <= o.baseline.toMs + eps);
  if (base.length >= 3 && base[0]?.tMs === Math.min(...o.buckets.map((b) => b.tMs))) base = base.slice(1);
  const seconds = intervalMs / 1000;
  const okSum = base.reduce((s, b) => s + b.ok, 0);
  const failedSum = base.reduce((s, b) => s + b.failed, 0);
  const goodput = base.length === 0 ? 0 : okSum / base.length / seconds;
  const errorRate = okSum + failedSum === 0 ? 0 : failedSum / (okSum + failedSum);
  if (base.length === 0) return { recoveredAfterMs: null, goodput, errorRate, baselineBuckets: 0 };
  // The bucket holding the fault's end counts when at most half of it is before the end (phases start a
  // few ms off the bucket grid: the faults are switched before a phase's first arrival).
  const after = o.buckets.filter((b) => b.tMs + intervalMs / 2 >= o.faultEndMs - eps && b.tMs + intervalMs <= o.endMs + eps).sort((a, b) => a.tMs - b.tMs);
  const healthy = (b: Bucket): boolean => {
    const done = b.ok + b.failed;
    return done > 0 && b.ok / seconds >= spec.goodputRatio * goodput - eps && b.failed / done <= errorRate + spec.errorRateSlack + eps;
  };
  for (let i = 0; i + spec.buckets <= after.length; i++) {
    let run = true;
    for (let k = 0; k < spec.buckets; k++) {
      const b = after[i + k];
      const prev = after[i + k - 1];
      if (b === undefined || !healthy(b) || (k > 0 && prev !== undefined && Math.abs(b.tMs - prev.tMs - intervalMs) > eps)) {
        run = false;
        break;
      }
    }
    if (run) return { recoveredAfterMs: Math.max(0, Math.round((after[i]?.tMs ?? 0) - o.faultEndMs)), goodput, errorRate, baselineBuckets: base.length };
  }
  return { recoveredAfterMs: null, goodput, errorRate, baselineBuckets: base.length };
}

function delta(a: Record<string, number>, b: Record<string, number>, key: string): number {
  return Math.max(0, (b[key] ?? 0) - (a[key] ?? 0));
}

/** Per-phase deltas of one counter family, for every key that moved (or is in `keep`). */
function perPhase(bounds: readonly Snapshot[], pick: (s: Snapshot) => Record<string, number>): PerPhase[] {
  const keys = new Set<string>();
  for (const s of bounds) for (const k of Object.keys(pick(s))) keys.add(k);
  const rows: PerPhase[] = [];
  for (const key of [...keys].sort()) {
    const values: number[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) values.push(delta(pick(bounds[i] as Snapshot), pick(bounds[i + 1] as Snapshot), key));
    if (values.some((v) => v > 0)) rows.push({ name: key, values });
  }
  return rows;
}

function countAt(s: Snapshot, endpoint: string, userRequests: number): number {
  return endpoint === 'user' ? userRequests : (s.server[endpoint] ?? 0);
}

export interface BuildInput {
  scenario: Scenario;
  load: LoadResult;
  /** Faults on in each load phase (by phase index). */
  phaseFaults: string[][];
  /** Snapshots at each phase's start, then one after the run (length phases + 1); missing ones are tolerated. */
  bounds: Snapshot[];
  /** Background samples (any order). */
  samples: Snapshot[];
  alerts: AlertRecord[];
  faultStats: ReadonlyMap<string, FaultStats>;
  notes: string[];
}

export function buildReport(input: BuildInput): ScenarioReport {
  const { scenario, load } = input;
  const t0 = Date.parse(load.startedAt);
  const rel = (at: number): number => Math.max(0, at - t0);
  const phases = load.phases.map((p, i) => phaseReport(p, input.phaseFaults[i] ?? []));
  const notes = [...input.notes];
  const intervalMs = scenario.intervalMs;
  const seconds = intervalMs / 1000;

  const timeline = load.timeline.map((b) => ({ tMs: b.tMs, phase: b.phase, offered: r3(b.scheduled / seconds), ok: r3(b.ok / seconds), failed: r3(b.failed / seconds), p50: b.p50, p99: b.p99 }));

  // Fault windows: consecutive phases with the same faults on merge into one.
  const faultWindows: ScenarioReport['faultWindows'] = [];
  phases.forEach((p) => {
    if (p.faults.length === 0) return;
    const last = faultWindows[faultWindows.length - 1];
    if (last !== undefined && Math.abs(last.toMs - p.startMs) < 1 && last.faults.join() === p.faults.join()) last.toMs = p.startMs + p.durationMs;
    else faultWindows.push({ fromMs: p.startMs, toMs: p.startMs + p.durationMs, faults: p.faults });
  });

  // Time to recover.
  const firstFault = phases.findIndex((p) => p.faults.length > 0);
  const lastFault = phases.map((p) => p.faults.length > 0).lastIndexOf(true);
  let recovery: RecoveryReport;
  if (firstFault === -1) {
    recovery = { faultEndMs: null, baseline: null, thresholds: scenario.recovery, recoveredAfterMs: null, note: 'no phase has faults: nothing to recover from' };
  } else if (firstFault === 0) {
    const lf = phases[lastFault] as PhaseReport;
    recovery = { faultEndMs: lf.startMs + lf.durationMs, baseline: null, thresholds: scenario.recovery, recoveredAfterMs: null, note: 'the first phase has faults: no baseline to recover to' };
  } else {
    const lf = phases[lastFault] as PhaseReport;
    const faultEndMs = lf.startMs + lf.durationMs;
    const first = phases[firstFault] as PhaseReport;
    const result = timeToRecover({ buckets: load.timeline, intervalMs, baseline: { fromMs: 0, toMs: first.startMs }, faultEndMs, endMs: load.durationMs, spec: scenario.recovery });
    const baseline = { phases: phases.slice(0, firstFault).map((p) => p.name), goodput: r3(result.goodput), errorRate: r3(result.errorRate), buckets: result.baselineBuckets };
    const note =
      result.baselineBuckets === 0
        ? 'the phases before the first fault are shorter than one bucket: no baseline'
        : result.recoveredAfterMs === null
          ? `goodput did not stay at ≥ ${scenario.recovery.goodputRatio * 100} % of the baseline (${baseline.goodput}/s) with error rate ≤ ${r3((result.errorRate + scenario.recovery.errorRateSlack) * 100)} % for ${scenario.recovery.buckets} consecutive buckets before the run ended`
          : `recovered ${result.recoveredAfterMs} ms after the last fault window ended`;
    recovery = { faultEndMs, baseline: result.baselineBuckets === 0 ? null : baseline, thresholds: scenario.recovery, recoveredAfterMs: result.recoveredAfterMs, note };
  }

  // Counter deltas per phase.
  const bounds = input.bounds;
  if (bounds.length !== phases.length + 1) notes.push(`${bounds.length} boundary samples for ${phases.length} phases: per-phase counters may be missing`);
  const userRequests = phases.map((p) => p.sent);
  const hops: HopReport[] = scenario.hops.map((h) => {
    const fromCalls: number[] = [];
    const toCalls: number[] = [];
    const perRequest: (number | null)[] = [];
    for (let i = 0; i + 1 < bounds.length && i < phases.length; i++) {
      const a = bounds[i] as Snapshot;
      const b = bounds[i + 1] as Snapshot;
      const users = userRequests[i] ?? 0;
      const from = h.from === 'user' ? users : countAt(b, h.from, users) - countAt(a, h.from, users);
      const to = h.to === 'user' ? users : countAt(b, h.to, users) - countAt(a, h.to, users);
      fromCalls.push(from);
      toCalls.push(to);
      perRequest.push(from > 0 ? r3(to / from) : null);
    }
    return { ...h, fromCalls, toCalls, perRequest };
  });
  const routes = perPhase(bounds, (s) => s.server);
  const dependencies = perPhase(bounds, (s) => s.client);
  const retries = perPhase(bounds, (s) => s.retries);
  const giveUps = perPhase(bounds, (s) => s.giveUps);
  const sagas = perPhase(bounds, (s) => s.sagas);

  // Breakers: every policy with a state gauge.
  const samples = [...input.samples].sort((a, b) => a.at - b.at);
  const policies = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.breakerState)) policies.add(k);
  const transitionRows = new Map(perPhase(bounds, (s) => s.breakerTransitions).map((r) => [r.name, r.values]));
  const rejectionRows = new Map(perPhase(bounds, (s) => s.rejections).map((r) => [r.name, r.values]));
  const zeros = phases.map(() => 0);
  const breakers: BreakerReport[] = [...policies].sort().map((policy) => {
    const timeline: [number, number][] = [];
    const changes: BreakerReport['changes'] = [];
    let prev: number | undefined;
    for (const s of samples) {
      // A breaker has no series until its first transition: closed until then.
      const v = s.breakerState[policy] ?? (prev === undefined ? 0 : undefined);
      if (v === undefined) continue;
      timeline.push([rel(s.at), v]);
      if (prev !== undefined && v !== prev) changes.push({ atMs: rel(s.at), from: prev, to: v });
      prev = v;
    }
    const transitions = transitionRows.get(policy) ?? zeros;
    return { policy, timeline, changes, transitions, rejections: rejectionRows.get(policy) ?? zeros, leftClosed: timeline.some(([, v]) => v !== 0) || transitions.some((t) => t > 0) };
  });

  // SLOs.
  const sloNames = new Set<string>();
  for (const s of [...samples, ...bounds]) for (const k of Object.keys(s.slos)) sloNames.add(k);
  const slos: SloReport[] = [...sloNames].sort().map((name) => {
    const objective = [...bounds, ...samples].find((s) => s.slos[name] !== undefined)?.slos[name]?.objective ?? 0;
    const sloPhases: SloReport['phases'] = [];
    for (let i = 0; i + 1 < bounds.length && i < phases.length; i++) {
      const a = (bounds[i] as Snapshot).slos[name];
      const b = (bounds[i + 1] as Snapshot).slos[name];
      const events = a !== undefined && b !== undefined ? b.totalEvents - a.totalEvents : 0;
      const bad = a !== undefined && b !== undefined ? b.badEvents - a.badEvents : 0;
      sloPhases.push({
        events,
        bad,
        burnRate: events > 0 && objective < 1 ? r3(bad / events / (1 - objective)) : null,
        remainingAtEnd: b === undefined ? null : r3(b.remainingFraction),
        burn5mAtEnd: b?.burnRates['5m'] ?? null,
        burn1hAtEnd: b?.burnRates['1h'] ?? null,
      });
    }
    const budgetTimeline: [number, number][] = samples.filter((s) => s.slos[name] !== undefined).map((s) => [rel(s.at), r3(s.slos[name]?.remainingFraction ?? 0)]);
    const startB = bounds[0]?.slos[name]?.remainingFraction;
    const endB = bounds[bounds.length - 1]?.slos[name]?.remainingFraction;
    const alerts = input.alerts
      .filter((a) => a.slo === name)
      .map((a) => ({ severity: a.severity, firedAtMs: rel(a.firedAt), resolvedAtMs: a.resolvedAt === undefined ? null : rel(a.resolvedAt), budgetRemaining: r3(a.budgetRemaining) }));
    const first = bounds[0]?.slos[name];
    const atStart = first === undefined ? null : { events: first.totalEvents, bad: first.badEvents, remaining: first.remainingFraction };
    return { name, objective, phases: sloPhases, budgetTimeline, atStart, budgetSpent: startB === undefined || endB === undefined ? null : r3(startB - endB), alerts };
  });

  const faults = Object.entries(scenario.faults).map(([name, rule]) => ({
    name,
    rule,
    phases: phases.filter((p) => p.faults.includes(name)).map((p) => p.name),
    stats: input.faultStats.get(name) ?? null,
  }));

  return {
    scenario: {
      name: scenario.name,
      description: scenario.description,
      file: scenario.file,
      maxRate: scenario.maxRate,
      seed: scenario.seed,
      intervalMs,
      workload: scenario.workload,
      faults: scenario.faults,
    },
    target: load.target,
    startedAt: load.startedAt,
    durationMs: load.durationMs,
    phases,
    total: phaseReport(load.total, [...new Set(phases.flatMap((p) => p.faults))]),
    timeline,
    faultWindows,
    recovery,
    userRequests,
    hops,
    routes,
    dependencies,
    retries,
    giveUps,
    sagas,
    breakers,
    slos,
    faults,
    notes,
  };
}

/** The report's headline figures, flat (the CLI's last line). */
export function reportFigures(report: ScenarioReport): Record<string, number | string | null> {
  const figures: Record<string, number | string | null> = { scenario: report.scenario.name, duration_s: r3(report.durationMs / 1000) };
  for (const p of report.phases) {
    const k = p.name.replace(/[^A-Za-z0-9]+/g, '_');
    figures[`${k}_goodput`] = r3(p.goodput);
    figures[`${k}_error_rate`] = r3(p.errorRate);
    figures[`${k}_p99_ms`] = p.latency.p99;
  }
  figures.recovered_after_ms = report.recovery.recoveredAfterMs;
  for (const s of report.slos) figures[`slo_${s.name.replace(/[^A-Za-z0-9]+/g, '_')}_budget_spent`] = s.budgetSpent;
  figures.breakers_opened = report.breakers.filter((b) => b.leftClosed).length;
  figures.alerts_fired = report.slos.reduce((n, s) => n + s.alerts.length, 0);
  return figures;
}
