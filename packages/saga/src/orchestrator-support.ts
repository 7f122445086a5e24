/**
 * The orchestrator's options and result types, what it keeps per saga it drives, and the small pure helpers
 * it uses: how a failure is read (ambiguous? the database unreachable?), how
 * an error is stored, an outcome built from a row, option checks.
 */
import { deadline as deadlinePolicy, isTransient, pipeline, retry, timeout, type Clock, type Pipeline } from '@bulwark/resilience';
import { CompiledQuery, type Store } from '@bulwark/store';
import type { EntryBreakerOptions } from './entry-guard.js';
import type { SagaDefinition, StepDefinition } from './definition.js';
import { SagaConfigError } from './errors.js';
import { numbered, type InstanceRow, type SagaState } from './repository.js';

/** Options of an orchestrator (`createSagaOrchestrator`). */
export interface SagaOrchestratorOptions {
  /** The owning module's store; its migrations must include `sagaMigrations` (set `saga`). */
  store: Store<unknown>;
  /** Every definition (and version) this orchestrator may start or resume. */
  sagas: readonly SagaDefinition[];
  /** This orchestrator's name in leases (a random suffix makes each instance unique). Default: host and pid. */
  owner?: string;
  /** How long a claim lasts without a heartbeat. Default 15 000 ms. */
  leaseMs?: number;
  /** Sagas driven at once; more are left for later claims. Default 500. */
  maxConcurrent?: number;
  /** How often to look for sagas to claim (also woken by commit signals). Default 1 000 ms. */
  pollIntervalMs?: number;
  /** How often to promote queued sagas and report overdue ones. Default 5 000 ms. */
  maintenanceIntervalMs?: number;
  /** Entry backpressure per saga type (off unless given). */
  entryBreaker?: EntryBreakerOptions;
  /** State-write batches in flight at once. Default 2. */
  writeConcurrency?: number;
  /** Timers and policy time. Default: the system clock. */
  clock?: Clock;
  /** Wall-clock milliseconds for leases and timestamps (shared by every orchestrator on the database). Default `Date.now`. */
  now?: () => number;
}

export interface StartOptions {
  /** The saga's id; starting twice with one id starts it once (the second call returns the first saga). Default: a UUIDv7. */
  id?: string;
}

export interface SagaHandle {
  id: string;
  /** `running`, `queued` behind a lock holder, or the state of an existing saga with this id. */
  state: SagaState;
  /** True when a saga with this id already existed. */
  existing: boolean;
}

/** A saga's outcome, as `result()` gives it. */
export interface SagaOutcome {
  id: string;
  state: SagaState;
  /** The input merged with every recorded step output. */
  data: Record<string, unknown>;
  failedStep: string | null;
  error: string | null;
}

/** A saga this process drives. */
export interface Driven {
  id: string;
  def: SagaDefinition;
  state: SagaState;
  phase: 'forward' | 'compensating';
  stepIndex: number;
  input: Record<string, unknown>;
  outputs: Record<string, unknown>;
  lockKey: string | null;
  epoch: number;
  leaseUntil: number;
  deadlineAt: number | null;
  logSeq: number;
  failedStep: string | null;
  error: string | null;
  createdAt: number;
  abort: AbortController;
  /** When this process took the lease (wall clock). */
  claimedAt: number;
  /** Settles when this process stops driving the saga. */
  done: Promise<void>;
}

export interface StepPolicies {
  invoke: Pipeline;
  compensate: Pipeline;
}

/** A step not started because the saga was past its deadline: a certain failure (nothing was called). */
export function lateResult(): CallResult {
  return { ok: false, lost: false, attempts: 0, error: Object.assign(new Error('the saga passed its deadline before this step started'), { name: 'SagaDeadlineExceeded', retryable: false }) };
}

export interface CallResult {
  ok: boolean;
  /** The orchestrator lost the saga (or closed) during the call: the outcome is not ours to record. */
  lost: boolean;
  attempts: number;
  output?: Record<string, unknown> | undefined;
  error?: unknown;
}

export function ref(d: Driven): { sagaId: string; type: string; version: number } {
  return { sagaId: d.id, type: d.def.name, version: d.def.version };
}

/** A failure after which the step may or may not have taken effect (it timed out, the connection broke). */
export function ambiguous(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return isTransient(error) || code === 'BULWARK_DEADLINE_EXCEEDED' || code === 'BULWARK_TIMEOUT';
}

/** An error as stored text: bounded, and without NUL (which PostgreSQL text refuses). */
export function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 2_000).replaceAll('\u0000', '\\u0000');
}

export const UNREACHABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_BUSY_SNAPSHOT']);

/** A database error that says "not now" (connection lost, server restarting, busy), not "never". */
export function isUnreachable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (code.startsWith('08') || UNREACHABLE_CODES.has(code) || isTransient(error)) return true;
  return typeof e?.message === 'string' && /Connection terminated|connection timeout|timeout exceeded when trying to connect|ECONNREFUSED|ECONNRESET/i.test(e.message);
}

export function outcomeOf(row: InstanceRow): SagaOutcome {
  const outputs = JSON.parse(row.outputs) as Record<string, Record<string, unknown> | undefined>;
  let data = JSON.parse(row.input) as Record<string, unknown>;
  for (const out of Object.values(outputs)) if (out !== undefined) data = { ...data, ...out };
  return { id: row.id, state: row.state, data, failedStep: row.failedStep, error: row.error };
}

export function insertQuery(dialect: 'sqlite' | 'postgres', r: InstanceRow): CompiledQuery {
  const text = `insert into saga_instances (id, type, version, state, phase, step_index, input, outputs, lock_key, owner, lease_epoch, lease_until, deadline_at, log_seq, failed_step, error, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing returning id`;
  return CompiledQuery.raw(dialect === 'postgres' ? numbered(text) : text, [
    r.id, r.type, r.version, r.state, r.phase, r.stepIndex, r.input, r.outputs, r.lockKey, r.owner, r.leaseEpoch, r.leaseUntil, r.deadlineAt, r.logSeq, r.failedStep, r.error, r.createdAt, r.updatedAt,
  ]);
}


export function positive(key: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new SagaConfigError(key, `must be a positive number, got ${String(value)}`);
  return value;
}

export function positiveInteger(key: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new SagaConfigError(key, `must be an integer >= 1, got ${String(value)}`);
  return value;
}

/** A step's policies on `clock`: invoke = deadline (the step's budget) → retry → per-attempt timeout; compensate = retry → timeout. */
export function stepPolicies(step: StepDefinition, clock: Clock): StepPolicies {
  return {
    invoke: pipeline({
      ...(step.timeoutMs === undefined ? {} : { deadline: deadlinePolicy(step.timeoutMs, { clock, name: `${step.name}.deadline` }) }),
      retry: retry({ name: `${step.name}.retry`, ...step.retry, clock }),
      ...(step.attemptTimeoutMs === undefined ? {} : { timeout: timeout(step.attemptTimeoutMs, { clock, name: `${step.name}.timeout` }) }),
    }),
    compensate: pipeline({
      retry: retry({ name: `${step.name}.compensation-retry`, ...step.compensationRetry, clock }),
      ...(step.attemptTimeoutMs === undefined ? {} : { timeout: timeout(step.attemptTimeoutMs, { clock, name: `${step.name}.compensation-timeout` }) }),
    }),
  };
}
