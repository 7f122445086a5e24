/**
 * The operator API: find sagas, read one saga's timeline, and act on the
 * ones that need a human — retry the step a stuck saga is stuck on, force a
 * running saga to compensate, mark a stuck saga resolved. Every action is
 * recorded in `saga_audit` (who, why, state before and after) in the same
 * transaction as the change.
 *
 * An action bumps the saga's lease epoch and releases its lease: whichever
 * orchestrator drove it stops (its next write is refused) and any
 * orchestrator claims it in its new state. Works from any process that can
 * reach the database; the orchestrators need not be told.
 *
 * @example
 * ```ts
 * const admin = new SagaAdmin({ store, sagas: [createOrder] });
 * for (const s of await admin.list({ states: ['stuck'] })) console.log(s.id, s.failedStep, s.error);
 * await admin.retryStep(id, { actor: 'alice@example.com', reason: 'payments back up after INC-231' });
 * ```
 */
import { type Store } from '@bulwark/store';
import { type SagaDefinition } from './definition.js';
import { InvalidSagaActionError, SagaNotFoundError, SagaStateError, UnknownSagaDefinitionError } from './errors.js';
import { SagaEventEmitter, type SagaListener } from './events.js';
import { NotFound, SagaRepository, type AuditRow, type InstanceRow, type SagaPhase, type SagaState, type StepLogRow } from './repository.js';

export const SAGA_STATES: readonly SagaState[] = ['queued', 'running', 'compensating', 'completed', 'compensated', 'stuck', 'resolved'];

export interface SagaAdminOptions {
  store: Store<unknown>;
  /** The definitions, to know each saga's steps and pivot. */
  sagas: readonly SagaDefinition[];
  /** Wall-clock milliseconds. Default `Date.now`. */
  now?: () => number;
}

export interface SagaListFilter {
  states?: readonly SagaState[];
  type?: string;
  /** Only sagas created at least this long ago (ms) — "stuck for over an hour". */
  olderThanMs?: number;
  /** Only sagas created at most this long ago (ms). */
  newerThanMs?: number;
  /** Page size, 1..500. Default 50. */
  limit?: number;
  /** Cursor: the last id of the previous page (newest first). */
  after?: string;
}

export interface SagaSummary {
  id: string;
  type: string;
  version: number;
  state: SagaState;
  phase: SagaPhase;
  /** The step the saga is at (forward), or will compensate next. */
  step: string | null;
  lockKey: string | null;
  owner: string | null;
  leaseUntil: number;
  failedStep: string | null;
  error: string | null;
  createdAt: number;
  updatedAt: number;
  deadlineAt: number | null;
  overdue: boolean;
}

export type TimelineEntry =
  | { at: number; kind: 'created' }
  | { at: number; kind: 'step'; step: string; phase: 'invoke' | 'compensate'; outcome: 'succeeded' | 'failed'; attempts: number; startedAt: number; durationMs: number; error: string | null }
  | { at: number; kind: 'operator'; action: string; actor: string; reason: string; before: string; after: string };

export interface SagaDetail extends SagaSummary {
  input: unknown;
  outputs: Record<string, unknown>;
  steps: StepLogRow[];
  audit: AuditRow[];
  /** Creation, every finished step and every operator action, in time order. */
  timeline: TimelineEntry[];
}

/** Who did it and why: both required, both recorded. */
export interface OperatorAction {
  actor: string;
  reason: string;
}

export class SagaAdmin {
  private readonly repository: SagaRepository;
  private readonly definitions = new Map<string, SagaDefinition>();
  private readonly events = new SagaEventEmitter();
  private readonly now: () => number;

  constructor(options: SagaAdminOptions) {
    this.repository = new SagaRepository(options.store);
    for (const def of options.sagas) this.definitions.set(`${def.name}@${def.version}`, def);
    this.now = options.now ?? Date.now;
  }

  /** `operator` events, one per action taken. */
  on(event: 'operator', listener: SagaListener<'operator'>): () => void {
    return this.events.on(event, listener);
  }

  async list(filter: SagaListFilter = {}): Promise<SagaSummary[]> {
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new InvalidSagaActionError('limit', `must be an integer in 1..500, got ${String(filter.limit)}`);
    for (const state of filter.states ?? []) if (!SAGA_STATES.includes(state)) throw new InvalidSagaActionError('states', `has unknown state ${JSON.stringify(state)}; one of ${SAGA_STATES.join(', ')}`);
    for (const key of ['olderThanMs', 'newerThanMs'] as const) {
      const v = filter[key];
      if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new InvalidSagaActionError(key, `must be a non-negative number of milliseconds, got ${String(v)}`);
    }
    const now = this.now();
    const rows = await this.repository.list({
      ...(filter.states === undefined ? {} : { states: filter.states }),
      ...(filter.type === undefined ? {} : { type: filter.type }),
      ...(filter.olderThanMs === undefined ? {} : { createdBefore: now - filter.olderThanMs }),
      ...(filter.newerThanMs === undefined ? {} : { createdAfter: now - filter.newerThanMs }),
      ...(filter.after === undefined ? {} : { after: filter.after }),
      limit,
    });
    return rows.map((r) => this.summary(r, now));
  }

  /** One saga with its step log, audit trail and merged timeline. */
  async get(id: string): Promise<SagaDetail> {
    const row = await this.repository.get(id);
    if (row === undefined) throw new SagaNotFoundError(id);
    const [steps, audit] = await Promise.all([this.repository.steps(id), this.repository.audit(id)]);
    const timeline: TimelineEntry[] = [
      { at: row.createdAt, kind: 'created' } as TimelineEntry,
      ...steps.map((s): TimelineEntry => ({ at: s.finishedAt, kind: 'step', step: s.step, phase: s.phase, outcome: s.outcome, attempts: s.attempts, startedAt: s.startedAt, durationMs: s.finishedAt - s.startedAt, error: s.error })),
      ...audit.map((a): TimelineEntry => ({ at: a.at, kind: 'operator', action: a.action, actor: a.actor, reason: a.reason, before: a.beforeState, after: a.afterState })),
    ].sort((a, b) => a.at - b.at);
    return { ...this.summary(row, this.now()), input: JSON.parse(row.input), outputs: JSON.parse(row.outputs) as Record<string, unknown>, steps, audit, timeline };
  }

  /**
   * Retries a stuck saga from where it stuck: the step after the pivot that
   * could not succeed, or the compensation that could not. It runs again
   * with the same idempotency key.
   */
  retryStep(id: string, action: OperatorAction): Promise<SagaSummary> {
    return this.act(id, 'retry-step', action, (row) => {
      if (row.state !== 'stuck') throw new SagaStateError(id, row.state, 'only a stuck saga has a step to retry');
      return { state: row.phase === 'forward' ? 'running' : 'compensating', phase: row.phase, stepIndex: row.stepIndex };
    });
  }

  /**
   * Makes a saga that has not passed its pivot compensate now: every step
   * it completed is undone, and the step it is at too (it may be in flight).
   * A queued saga is simply cancelled.
   */
  forceCompensate(id: string, action: OperatorAction): Promise<SagaSummary> {
    return this.act(id, 'force-compensate', action, (row) => {
      if (row.state === 'queued') return { state: 'compensated', phase: 'compensating', stepIndex: -1 };
      if (row.state !== 'running' && row.state !== 'stuck') throw new SagaStateError(id, row.state, 'only a queued, running or stuck saga can be made to compensate');
      if (row.phase !== 'forward') throw new SagaStateError(id, row.state, 'it is already compensating; retry the step instead');
      const def = this.definitionOf(row);
      if (def.pivotIndex >= 0 && row.stepIndex > def.pivotIndex) throw new SagaStateError(id, row.state, `it is past its pivot step "${def.steps[def.pivotIndex]?.name}", which cannot be undone`);
      return { state: 'compensating', phase: 'compensating', stepIndex: Math.min(row.stepIndex, def.steps.length - 1) };
    });
  }

  /** Closes a stuck saga whose problem an operator fixed by hand. Frees its lock. */
  markResolved(id: string, action: OperatorAction): Promise<SagaSummary> {
    return this.act(id, 'mark-resolved', action, (row) => {
      if (row.state !== 'stuck') throw new SagaStateError(id, row.state, 'only a stuck saga can be marked resolved');
      return { state: 'resolved', phase: row.phase, stepIndex: row.stepIndex };
    });
  }

  /** Sagas past their deadline and not finished. */
  async overdue(limit = 100): Promise<SagaSummary[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new InvalidSagaActionError('limit', `must be an integer in 1..500, got ${String(limit)}`);
    const now = this.now();
    return (await this.repository.overdue(now, limit)).map((r) => this.summary(r, now));
  }

  private async act(id: string, name: string, action: OperatorAction, decide: (row: InstanceRow) => { state: SagaState; phase: SagaPhase; stepIndex: number }): Promise<SagaSummary> {
    for (const field of ['actor', 'reason'] as const) {
      const v = (action as Partial<OperatorAction> | undefined)?.[field];
      if (typeof v !== 'string' || v.trim() === '') throw new InvalidSagaActionError(field, 'is required (a non-empty string): every operator action is audited');
      if (v.length > 1_000) throw new InvalidSagaActionError(field, 'is longer than 1000 characters');
    }
    const at = this.now();
    let change;
    try {
      change = await this.repository.operatorChange(id, decide, { at, action: name, actor: action.actor, reason: action.reason });
    } catch (error) {
      if (error instanceof NotFound) throw new SagaNotFoundError(id);
      throw error;
    }
    const { before, after } = change;
    this.events.emit('operator', { sagaId: id, type: before.type, version: before.version, action: name, actor: action.actor, reason: action.reason, before: before.state, after: after.state });
    if (before.lockKey !== null && (after.state === 'resolved' || after.state === 'compensated')) await this.repository.promoteQueued(before.lockKey, at);
    return this.summary({ ...before, ...after, owner: null, leaseUntil: 0, updatedAt: at }, at);
  }

  private definitionOf(row: InstanceRow): SagaDefinition {
    const def = this.definitions.get(`${row.type}@${row.version}`);
    if (def === undefined) throw new UnknownSagaDefinitionError(row.type, row.version);
    return def;
  }

  private summary(row: InstanceRow, now: number): SagaSummary {
    const def = this.definitions.get(`${row.type}@${row.version}`);
    const step = row.stepIndex >= 0 ? (def?.steps[row.stepIndex]?.name ?? null) : null;
    const open = row.state === 'queued' || row.state === 'running' || row.state === 'compensating';
    return {
      id: row.id,
      type: row.type,
      version: row.version,
      state: row.state,
      phase: row.phase,
      step,
      lockKey: row.lockKey,
      owner: row.owner,
      leaseUntil: row.leaseUntil,
      failedStep: row.failedStep,
      error: row.error,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
      deadlineAt: row.deadlineAt,
      overdue: open && row.deadlineAt !== null && row.deadlineAt < now,
    };
  }
}
