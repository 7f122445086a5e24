/**
 * The plan of a run: validated phases and options, and the arrival schedule.
 *
 * A phase of `durationMs` D at a rate moving linearly from r0 to r1 offers
 * N(t) = r0·t + (r1 − r0)·t² / (2D) arrivals by time t (seconds into the
 * phase). Arrival k (k = 0, 1, ...) is due when N(t) = k:
 *
 *   t_k = 2k / (r0 + sqrt(r0² + 2k(r1 − r0)/D))
 *
 * (the root of the quadratic written so that it is stable when r1 = r0, where
 * it is k / r0, and when r0 = 0). A constant rate is therefore evenly spaced,
 * the first arrival at the phase's start, and a phase schedules
 * ceil(N(D)) = ceil((r0 + r1)·D / 2) arrivals: within one of its integral.
 */
import type { LoadOptions, LoadPhase } from './types.js';

/** A bad phase or option. `phaseIndex` and `field` name what is wrong. */
export class LoadPlanError extends Error {
  constructor(
    message: string,
    readonly field: string,
    readonly phaseIndex?: number,
  ) {
    super(phaseIndex === undefined ? `load plan: ${field}: ${message}` : `load plan: phases[${phaseIndex}].${field}: ${message}`);
    this.name = 'LoadPlanError';
  }
}

export interface Plan {
  phases: LoadPhase[];
  maxInFlight: number;
  connections: number;
  timeoutMs: number;
  maxRequests: number;
  maxRate: number;
  seed: number;
  intervalMs: number;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const show = (v: unknown): string => (typeof v === 'number' ? String(v) : v === undefined ? 'undefined' : JSON.stringify(v) ?? typeof v);

function positive(value: unknown, field: string, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (!finite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new LoadPlanError(`must be a positive ${integer ? 'integer' : 'number'}, got ${show(value)}`, field);
  }
  return value;
}

/** Validates the options' plan (phases and numeric bounds); throws LoadPlanError naming the field. */
export function makePlan(options: LoadOptions): Plan {
  const maxRate = positive(options.maxRate, 'maxRate', 5_000, false);
  const list: unknown = options.phases;
  if (!Array.isArray(list) || list.length === 0) throw new LoadPlanError('at least one phase is needed', 'phases');
  const phases = (list as unknown[]).map((item, i): LoadPhase => {
    if (typeof item !== 'object' || item === null) throw new LoadPlanError('not a phase object', 'phase', i);
    const phase = item as Partial<Record<keyof LoadPhase, unknown>>;
    if (typeof phase.name !== 'string' || phase.name === '') throw new LoadPlanError('a phase needs a non-empty name', 'name', i);
    if (!finite(phase.durationMs) || phase.durationMs <= 0) throw new LoadPlanError(`must be a positive number of ms, got ${show(phase.durationMs)}`, 'durationMs', i);
    const rate = (field: 'rate' | 'rateTo', value: unknown): number => {
      if (!finite(value) || value < 0) throw new LoadPlanError(`must be a number >= 0 (arrivals per second), got ${show(value)}`, field, i);
      if (value > maxRate) throw new LoadPlanError(`${value}/s is above maxRate ${maxRate}/s`, field, i);
      return value;
    };
    const checked: LoadPhase = { name: phase.name, durationMs: phase.durationMs, rate: rate('rate', phase.rate) };
    if (phase.rateTo !== undefined) checked.rateTo = rate('rateTo', phase.rateTo);
    return checked;
  });
  let maxRequests = Infinity;
  if (options.maxRequests !== undefined) {
    if (!finite(options.maxRequests) || options.maxRequests < 0 || !Number.isInteger(options.maxRequests)) {
      throw new LoadPlanError(`must be an integer >= 0, got ${show(options.maxRequests)}`, 'maxRequests');
    }
    maxRequests = options.maxRequests;
  }
  const seed = options.seed ?? 1;
  if (!finite(seed)) throw new LoadPlanError(`must be a finite number, got ${show(seed)}`, 'seed');
  return {
    phases,
    maxInFlight: positive(options.maxInFlight, 'maxInFlight', 1_000, true),
    connections: positive(options.connections, 'connections', 64, true),
    timeoutMs: positive(options.timeoutMs, 'timeoutMs', 10_000, false),
    maxRequests,
    maxRate,
    seed,
    intervalMs: positive(options.intervalMs, 'intervalMs', 1_000, false),
  };
}

/**
 * Due time (ms from the phase's start) of arrival `k` of `phase`, or
 * `undefined` when the phase has no arrival `k` (past its end).
 */
export function arrivalOffsetMs(phase: LoadPhase, k: number): number | undefined {
  const d = phase.durationMs / 1000;
  const r0 = phase.rate;
  const r1 = phase.rateTo ?? phase.rate;
  let t: number;
  if (k === 0) {
    t = 0;
    if (r0 === 0 && r1 === 0) return undefined;
  } else {
    const disc = r0 * r0 + (2 * k * (r1 - r0)) / d;
    if (disc < 0) return undefined;
    const denom = r0 + Math.sqrt(disc);
    if (denom <= 0) return undefined;
    t = (2 * k) / denom;
  }
  const ms = t * 1000;
  return ms < phase.durationMs ? ms : undefined;
}

/** Arrivals the phase schedules: the count of k with a due time inside it. */
export function scheduledCount(phase: LoadPhase): number {
  const integral = ((phase.rate + (phase.rateTo ?? phase.rate)) * phase.durationMs) / 2000;
  // ceil(integral), corrected for floating-point error at the boundary.
  let n = Math.max(0, Math.ceil(integral) - 1);
  while (arrivalOffsetMs(phase, n) !== undefined) n++;
  while (n > 0 && arrivalOffsetMs(phase, n - 1) === undefined) n--;
  return n;
}

/** Parses `30s`, `1.5m`, `500ms`, `2h` or a bare number of ms. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) return undefined;
  const value = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return value * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : unit === 's' ? 1_000 : 1);
}

/**
 * Parses a phase list, `warm:10s@50,steady:30s@200,ramp:20s@200..400`:
 * `name:duration@rate` or `name:duration@from..to`. Throws LoadPlanError naming the phase.
 */
export function parsePhases(text: string): LoadPhase[] {
  return text.split(',').map((part, i) => {
    const m = /^([^:@,]+):([^@]+)@([^.]+)(?:\.\.(.+))?$/.exec(part.trim());
    if (m === null) throw new LoadPlanError(`"${part}" is not name:duration@rate or name:duration@from..to`, 'spec', i);
    const durationMs = parseDuration(m[2] ?? '');
    if (durationMs === undefined) throw new LoadPlanError(`"${m[2]}" is not a duration (e.g. 30s, 500ms, 2m)`, 'durationMs', i);
    const phase: LoadPhase = { name: m[1] ?? '', durationMs, rate: Number(m[3]) };
    if (m[4] !== undefined) phase.rateTo = Number(m[4]);
    return phase;
  });
}
