/**
 * The saga orchestrator: persists sagas in the owning module's database and
 * drives them step by step, surviving crashes and sharing work with other
 * orchestrators on the same database.
 *
 * - **Durable**: a saga is inserted before its first participant call; after
 *   every step its cursor, the step's output and a step-log row are written
 *   (fenced by the lease) before the next call. A crash at any point resumes
 *   at the first step not recorded; that step is called again with the same
 *   idempotency key, so the participant applies it once.
 * - **Leases**: the orchestrator that starts or claims a saga owns it until
 *   its lease expires; a heartbeat renews the leases of every saga it drives
 *   in one statement. Sagas whose lease expired are claimed by any
 *   orchestrator that knows their definition (`SKIP LOCKED` on PostgreSQL);
 *   the claim bumps the lease epoch, and every write is fenced by it.
 * - **Group commit**: the writes of sagas driven at once go out together.
 * - **Failure**: a step that fails for good compensates the completed steps
 *   in reverse order (and the failed step too when its outcome is unknown);
 *   compensations retry with backoff; when they cannot succeed, or a step
 *   after the pivot cannot, the saga is `stuck` and a `stuck` event fires.
 *
 * @example
 * ```ts
 * const store = await openStore({ module: 'orders', url, migrations: { orders: own, saga: sagaMigrations } });
 * const sagas = await createSagaOrchestrator({ store, sagas: [createOrder] });
 * const { id } = await sagas.start(createOrder, { orderId, items, amount });
 * const outcome = await sagas.result(id, { timeoutMs: 30_000 });
 * ```
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { uuidv7 } from '@bulwark/messaging';
import { systemClock, type Clock, type Timer } from '@bulwark/resilience';
import { type UnitOfWork, CompiledQuery } from '@bulwark/store';
import { type CompensationContext, type SagaDefinition, type StepContext, type StepDefinition } from './definition.js';
import { EntryGuard } from './entry-guard.js';
import { InvalidSagaInputError, SagaClosedError, SagaConfigError, SagaLockedError, SagaNotFoundError, SagaRefusedError, SagaWaitTimeoutError, UnknownSagaDefinitionError } from './errors.js';
import { SagaEventEmitter, type SagaEventName, type SagaListener } from './events.js';
import { SAGA_SIGNAL, SagaRepository, numbered, type InstanceRow, type Progress, type SagaState, type StepLogRow } from './repository.js';
import { SagaWriter } from './writer.js';
import {
  ambiguous,
  describe,
  insertQuery,
  isUnreachable,
  lateResult,
  outcomeOf,
  positive,
  positiveInteger,
  ref,
  stepPolicies,
  type CallResult,
  type Driven,
  type SagaOutcome,
  type SagaOrchestratorOptions,
  type StartOptions,
  type SagaHandle,
  type StepPolicies,
} from './orchestrator-support.js';

export type { SagaOutcome, SagaOrchestratorOptions, StartOptions, SagaHandle } from './orchestrator-support.js';




const TERMINAL: ReadonlySet<SagaState> = new Set(['completed', 'compensated', 'resolved']);
/** States `result()` returns on: finished, or waiting for an operator. */
const SETTLED: ReadonlySet<SagaState> = new Set(['completed', 'compensated', 'resolved', 'stuck']);

export class SagaOrchestrator {
  readonly owner: string;
  private readonly repository: SagaRepository;
  private readonly writer: SagaWriter;
  private readonly events = new SagaEventEmitter();
  private readonly definitions = new Map<string, SagaDefinition>();
  private readonly policies = new Map<StepDefinition, StepPolicies>();
  private readonly driving = new Map<string, Driven>();
  private readonly running = new Set<Promise<void>>();
  private readonly waiters = new Map<string, ((outcome: SagaOutcome) => void)[]>();
  private readonly reportedOverdue = new Set<string>();
  private readonly guard: EntryGuard | undefined;
  private readonly clock: Clock;
  private readonly now: () => number;
  private readonly leaseMs: number;
  private readonly maxConcurrent: number;
  private readonly pollIntervalMs: number;
  private readonly maintenanceIntervalMs: number;
  /** Leases renewed up to here by the last heartbeat that succeeded. */
  private renewedUntil = 0;
  private timers: Timer[] = [];
  private stopSignal: (() => void) | undefined;
  private claiming: Promise<void> | undefined;
  private claimAgain = false;
  /** Slots held by starts whose insert is in flight. */
  private reserved = 0;
  /** Claimable sagas may be waiting for a free slot (a start or a claim found this process full). */
  private backlog = false;
  private closed = false;

  constructor(private readonly options: SagaOrchestratorOptions) {
    const { store } = options;
    if (typeof store !== 'object' || store === null || typeof store.transaction !== 'function') throw new SagaConfigError('store', 'must be a store from openStore()');
    const sagas = options.sagas as readonly SagaDefinition[] | undefined;
    if (sagas === undefined || typeof sagas.length !== 'number' || sagas.length === 0) throw new SagaConfigError('sagas', 'must list at least one saga definition');
    for (const [i, def] of sagas.entries()) {
      if (typeof def !== 'object' || def === null || typeof def.name !== 'string' || !Array.isArray(def.steps)) throw new SagaConfigError(`sagas[${i}]`, 'must be a definition from defineSaga(...).build()');
      const key = `${def.name}@${def.version}`;
      if (this.definitions.has(key)) throw new SagaConfigError(`sagas[${i}]`, `${key} is listed twice`);
      this.definitions.set(key, def);
    }
    if (options.owner !== undefined && (typeof options.owner !== 'string' || options.owner === '')) throw new SagaConfigError('owner', 'must be a non-empty string');
    // Unique per instance even when the name is not: a restart that reused the name would
    // otherwise renew (and so keep from every claim) the leases its dead predecessor held.
    this.owner = `${options.owner ?? `${hostname()}:${process.pid}`}:${randomUUID().slice(0, 8)}`;
    this.leaseMs = positive('leaseMs', options.leaseMs, 15_000);
    this.maxConcurrent = positiveInteger('maxConcurrent', options.maxConcurrent, 500);
    this.pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs, 1_000);
    this.maintenanceIntervalMs = positive('maintenanceIntervalMs', options.maintenanceIntervalMs, 5_000);
    const writeConcurrency = positiveInteger('writeConcurrency', options.writeConcurrency, 2);
    this.clock = options.clock ?? systemClock;
    this.now = options.now ?? Date.now;
    this.guard = options.entryBreaker === undefined ? undefined : new EntryGuard(options.entryBreaker);
    this.repository = new SagaRepository(store);
    this.writer = new SagaWriter(this.repository, writeConcurrency);
  }

  /** Starts the background work: claiming (resuming sagas left by crashes), heartbeats, maintenance. */
  async open(): Promise<this> {
    this.stopSignal = await this.options.store.onSignal(SAGA_SIGNAL, () => this.claimSoon());
    const every = (ms: number, fn: () => void): void => {
      const tick = (): void => {
        if (this.closed) return;
        fn();
        this.timers.push(this.clock.setTimer(tick, ms));
      };
      this.timers.push(this.clock.setTimer(tick, ms));
    };
    every(this.pollIntervalMs, () => this.claimSoon());
    every(this.leaseMs / 3, () => void this.heartbeat());
    every(this.maintenanceIntervalMs, () => void this.maintain());
    this.claimSoon();
    return this;
  }

  on<E extends SagaEventName>(event: E, listener: SagaListener<E>): () => void {
    return this.events.on(event, listener);
  }

  /** Sagas this process drives right now. */
  get active(): number {
    return this.driving.size;
  }

  /**
   * Persists a new saga and starts driving it. Rejects, persisting nothing,
   * with `InvalidSagaInputError` (input fails the schema), `SagaLockedError`
   * (lock key taken and the definition refuses), `SagaRefusedError` (entry
   * backpressure) or `UnknownSagaDefinitionError`.
   */
  async start<Input>(definition: SagaDefinition<Input, unknown>, input: Input, options: StartOptions = {}): Promise<SagaHandle> {
    const { row, def } = this.prepare(definition, input, options);
    // Hold the slot from now: many starts in one tick must not all take one.
    if (row.owner !== null) this.reserved++;
    try {
      if (await this.writer.insert(row)) return this.started(row, def);
      return await this.resolveConflict(row, def, (r) => this.writer.insert(r));
    } finally {
      if (row.owner !== null) this.reserved--;
    }
  }

  /**
   * Persists a new saga inside the caller's transaction (with the business
   * change that starts it, e.g. the order row), and starts driving it when
   * that transaction commits. Rejects like `start`; a rejection leaves the
   * caller's transaction usable (throw to roll it back).
   */
  async startIn<Input, DB>(tx: UnitOfWork<DB>, definition: SagaDefinition<Input, unknown>, input: Input, options: StartOptions = {}): Promise<SagaHandle> {
    const { row, def } = this.prepare(definition, input, options);
    const insert = async (r: InstanceRow): Promise<boolean> => {
      const result = await tx.db.executeQuery(insertQuery(tx.dialect, r));
      return result.rows.length > 0;
    };
    let handle: SagaHandle;
    if (await insert(row)) {
      handle = { id: row.id, state: row.state, existing: false };
      tx.afterCommit(() => void this.started(row, def));
    } else {
      handle = await this.resolveConflict(row, def, insert, tx as unknown as UnitOfWork<unknown>);
    }
    return handle;
  }

  /**
   * Resolves when the saga is completed, compensated, resolved or stuck.
   * Rejects with `SagaWaitTimeoutError` after `timeoutMs` (the saga goes on),
   * `SagaNotFoundError` for an unknown id.
   */
  async result(id: string, options: { timeoutMs?: number } = {}): Promise<SagaOutcome> {
    // A saga this process drives tells its waiters when it settles: no need to read it first.
    if (!this.driving.has(id)) {
      const row = await this.repository.get(id);
      if (row === undefined) throw new SagaNotFoundError(id);
      if (SETTLED.has(row.state)) return outcomeOf(row);
    }
    return new Promise<SagaOutcome>((resolve, reject) => {
      let poll: Timer | undefined;
      let expire: Timer | undefined;
      const done = (outcome: SagaOutcome): void => {
        poll?.cancel();
        expire?.cancel();
        const list = this.waiters.get(id);
        if (list !== undefined) {
          list.splice(list.indexOf(done), 1);
          if (list.length === 0) this.waiters.delete(id);
        }
        resolve(outcome);
      };
      const list = this.waiters.get(id) ?? [];
      list.push(done);
      this.waiters.set(id, list);
      // Another orchestrator may drive it: look now and then.
      const look = (): void => {
        poll = this.clock.setTimer(() => {
          if (this.driving.has(id)) return look();
          this.repository.get(id).then(
            (r) => (r !== undefined && SETTLED.has(r.state) ? done(outcomeOf(r)) : look()),
            () => look(),
          );
        }, Math.min(this.pollIntervalMs, 250));
      };
      look();
      if (options.timeoutMs !== undefined) {
        expire = this.clock.setTimer(() => {
          poll?.cancel();
          const waiting = this.waiters.get(id);
          if (waiting !== undefined) {
            waiting.splice(waiting.indexOf(done), 1);
            if (waiting.length === 0) this.waiters.delete(id);
          }
          reject(new SagaWaitTimeoutError(id));
        }, options.timeoutMs);
      }
    });
  }

  /**
   * Stops: claims and starts no more sagas, lets the ones in hand finish the
   * step they are in (up to `drainMs`, default 5 s), then releases their
   * leases so another orchestrator takes them over at once.
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) t.cancel();
    this.timers = [];
    this.stopSignal?.();
    const drained = Promise.all(this.running);
    let timer: Timer | undefined;
    const late = new Promise<void>((resolve) => (timer = this.clock.setTimer(resolve, options.drainMs ?? 5_000)));
    await Promise.race([drained, late]);
    timer?.cancel();
    for (const d of this.driving.values()) d.abort.abort(new SagaClosedError());
    await Promise.all(this.running);
    await this.claiming;
    await this.writer.drained();
  }

  // ---------------------------------------------------------------- starting

  private prepare<Input>(definition: SagaDefinition<Input, unknown>, input: Input, options: StartOptions): { row: InstanceRow; def: SagaDefinition } {
    if (this.closed) throw new SagaClosedError();
    const def = this.definitions.get(`${definition.name}@${definition.version}`);
    if (def === undefined) throw new UnknownSagaDefinitionError(definition.name, definition.version);
    const now = this.now();
    const refusal = this.guard?.refusal(def.name, now);
    if (refusal !== undefined) {
      this.events.emit('refused', { type: def.name, failureRate: refusal.failureRate });
      throw new SagaRefusedError(def.name, refusal.failureRate, refusal.retryAfterMs);
    }
    let parsed: unknown;
    try {
      parsed = (def.parseInput)(input);
    } catch (error) {
      throw new InvalidSagaInputError(def.name, (error as Error)?.message ?? String(error), { cause: error });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidSagaInputError(def.name, 'the parsed input must be a JSON object');
    let inputJson: string;
    try {
      inputJson = JSON.stringify(parsed);
    } catch (error) {
      throw new InvalidSagaInputError(def.name, `the input is not JSON: ${String(error)}`, { cause: error });
    }
    const lockKey = def.lockKey === undefined ? undefined : (def.lockKey as (i: unknown) => string | undefined)(parsed);
    if (lockKey !== undefined && (typeof lockKey !== 'string' || lockKey === '')) throw new InvalidSagaInputError(def.name, 'lockKey(input) must return a non-empty string or undefined');
    const id = options.id ?? uuidv7(now);
    if (typeof id !== 'string' || id === '' || id.length > 200) throw new InvalidSagaInputError(def.name, 'the saga id must be a non-empty string of at most 200 characters');
    const own = this.driving.size + this.reserved < this.maxConcurrent;
    return {
      def,
      row: {
        id,
        type: def.name,
        version: def.version,
        state: 'running',
        phase: 'forward',
        stepIndex: 0,
        input: inputJson,
        outputs: '{}',
        lockKey: lockKey ?? null,
        owner: own ? this.owner : null,
        leaseEpoch: 1,
        leaseUntil: own ? now + this.leaseMs : 0,
        deadlineAt: def.deadlineMs === undefined ? null : now + def.deadlineMs,
        logSeq: 0,
        failedStep: null,
        error: null,
        createdAt: now,
        updatedAt: now,
      },
    };
  }

  /** The insert changed nothing: the id exists (return it), or the lock is taken (queue or refuse). */
  private async resolveConflict(row: InstanceRow, def: SagaDefinition, insert: (r: InstanceRow) => Promise<boolean>, tx?: UnitOfWork<unknown>): Promise<SagaHandle> {
    const read = async <R>(text: string, params: unknown[]): Promise<R[]> =>
      tx === undefined ? this.repository.run<R>(text, params) : (await tx.db.executeQuery<R>(CompiledQuery.raw(tx.dialect === 'postgres' ? numbered(text) : text, params))).rows;
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await read<{ state: SagaState }>('select state from saga_instances where id = ?', [row.id]);
      if (existing[0] !== undefined) return { id: row.id, state: existing[0].state, existing: true };
      if (row.lockKey === null) continue;
      const holder = await read<{ id: string }>(`select id from saga_instances where lock_key = ? and state in ('running', 'compensating', 'stuck')`, [row.lockKey]);
      if (def.onLocked === 'refuse') throw new SagaLockedError(def.name, row.lockKey, holder[0]?.id);
      if (holder[0] === undefined) {
        // The holder finished in between: try to take the lock again.
        if (await insert(row)) return tx === undefined ? this.started(row, def) : (tx.afterCommit(() => void this.started(row, def)), { id: row.id, state: row.state, existing: false });
        continue;
      }
      const queued: InstanceRow = { ...row, state: 'queued', owner: null, leaseUntil: 0 };
      if (await insert(queued)) {
        this.events.emit('started', { sagaId: row.id, type: row.type, version: row.version, lockKey: row.lockKey, queued: true });
        return { id: row.id, state: 'queued', existing: false };
      }
    }
    throw new SagaLockedError(def.name, row.lockKey ?? '', undefined);
  }

  private started(row: InstanceRow, def: SagaDefinition): SagaHandle {
    this.events.emit('started', { sagaId: row.id, type: row.type, version: row.version, lockKey: row.lockKey, queued: false });
    if (row.owner === this.owner) this.drive(this.driven(row, def));
    else {
      this.backlog = true;
      this.claimSoon();
    }
    return { id: row.id, state: row.state, existing: false };
  }

  private driven(row: InstanceRow, def: SagaDefinition): Driven {
    return {
      id: row.id,
      def,
      state: row.state,
      phase: row.phase,
      stepIndex: row.stepIndex,
      input: JSON.parse(row.input) as Record<string, unknown>,
      outputs: JSON.parse(row.outputs) as Record<string, unknown>,
      lockKey: row.lockKey,
      epoch: row.leaseEpoch,
      leaseUntil: row.leaseUntil,
      deadlineAt: row.deadlineAt,
      logSeq: row.logSeq,
      failedStep: row.failedStep,
      error: row.error,
      createdAt: row.createdAt,
      abort: new AbortController(),
      claimedAt: this.now(),
      done: Promise.resolve(),
    };
  }

  // ---------------------------------------------------------------- driving

  private drive(d: Driven): void {
    this.driving.set(d.id, d);
    const run = this.run(d).then(
      () => undefined,
      (error: unknown) => {
        this.events.emit('error', { where: `driving saga ${d.id}`, error });
        return this.repository.release(this.owner, [{ id: d.id, epoch: d.epoch }]).catch(() => undefined);
      },
    );
    this.running.add(run);
    d.done = run.finally(() => {
      this.running.delete(run);
      if (this.driving.get(d.id) === d) this.driving.delete(d.id);
      // A freed slot is worth a claim only when work was left waiting for one; the poll covers the rest.
      if (!this.closed && this.backlog) this.claimSoon();
    });
  }

  /** Drives `d` until it settles, its lease is lost, or the orchestrator closes. */
  private async run(d: Driven): Promise<void> {
    const steps = d.def.steps;
    for (;;) {
      if (d.abort.signal.aborted) return;
      if (this.closed) return this.releaseOne(d);
      if (d.state === 'running') {
        if (d.stepIndex >= steps.length) {
          if (await this.write(d, { state: 'completed' }, [])) this.settle(d);
          return;
        }
        const step = steps[d.stepIndex] as StepDefinition;
        const beforePivot = step.kind !== 'retriable';
        const started = this.now();
        // Past its deadline a saga starts no step it could still undo (nor its pivot): it compensates.
        const late = beforePivot && d.deadlineAt !== null && started >= d.deadlineAt;
        const result = late ? lateResult() : await this.invoke(d, step);
        if (result.lost) return this.releaseOne(d);
        const finished = this.now();
        const log = this.log(d, step, 'invoke', result, started, finished);
        if (result.ok) {
          const outputs = result.output === undefined ? d.outputs : { ...d.outputs, [step.name]: result.output };
          const next = d.stepIndex + 1;
          const done = next >= steps.length;
          if (!(await this.write(d, { stepIndex: next, outputs, state: done ? 'completed' : 'running' }, [log]))) return;
          this.stepEvent('step-succeeded', d, step, 'invoke', result, finished - started);
          if (done) return this.settle(d);
          continue;
        }
        this.stepEvent('step-failed', d, step, 'invoke', result, finished - started);
        const error = describe(result.error);
        // After the pivot nothing is undone; a pivot whose outcome is unknown may have committed
        // the saga, so undoing the steps before it could contradict it: an operator decides.
        if (!beforePivot || (step.kind === 'pivot' && ambiguous(result.error))) {
          if (await this.write(d, { state: 'stuck', failedStep: step.name, error }, [log])) {
            this.events.emit('failed', { ...ref(d), step: step.name, error, compensating: false });
            this.events.emit('stuck', { ...ref(d), step: step.name, phase: 'invoke', error });
            this.settle(d);
          }
          return;
        }
        // The failed step is compensated too when it may have taken effect.
        const cursor = ambiguous(result.error) && step.compensate !== undefined ? d.stepIndex : d.stepIndex - 1;
        if (!(await this.write(d, { state: 'compensating', phase: 'compensating', stepIndex: cursor, failedStep: step.name, error }, [log]))) return;
        this.events.emit('failed', { ...ref(d), step: step.name, error, compensating: true });
        continue;
      }
      if (d.state === 'compensating') {
        let cursor = d.stepIndex;
        while (cursor >= 0 && (steps[cursor] as StepDefinition).compensate === undefined) cursor--;
        if (cursor < 0) {
          if (await this.write(d, { state: 'compensated', stepIndex: -1 }, [])) this.settle(d);
          return;
        }
        const step = steps[cursor] as StepDefinition;
        const started = this.now();
        const result = await this.compensate(d, step);
        if (result.lost) return this.releaseOne(d);
        const finished = this.now();
        const log = this.log(d, step, 'compensate', result, started, finished);
        if (result.ok) {
          if (!(await this.write(d, { stepIndex: cursor - 1 }, [log]))) return;
          this.stepEvent('step-succeeded', d, step, 'compensate', result, finished - started);
          continue;
        }
        this.stepEvent('step-failed', d, step, 'compensate', result, finished - started);
        const error = describe(result.error);
        if (await this.write(d, { state: 'stuck', stepIndex: cursor, error }, [log])) {
          this.events.emit('stuck', { ...ref(d), step: step.name, phase: 'compensate', error });
          this.settle(d);
        }
        return;
      }
      return; // queued, stuck or finished: nothing to drive
    }
  }

  private async invoke(d: Driven, step: StepDefinition): Promise<CallResult> {
    const policies = this.policiesOf(step);
    const idempotencyKey = `${d.id}:${step.name}`;
    const data = this.dataBefore(d, step.index);
    let attempts = 0;
    this.stepStarted(d, step, 'invoke');
    // The saga's deadline bounds the steps it can still undo. Not the pivot: a pivot cut off in
    // flight may have committed, and once started it is let finish (its own timeouts bound it).
    const sagaDeadline = step.kind === 'compensatable' && d.deadlineAt !== null ? this.clock.now() + (d.deadlineAt - this.now()) : undefined;
    try {
      const output = await policies.invoke.execute(
        (ctx) => {
          attempts = ctx.attempt;
          this.checkLease(d);
          const context: StepContext = { sagaId: d.id, sagaType: d.def.name, step: step.name, idempotencyKey, attempt: ctx.attempt, signal: ctx.signal, deadline: ctx.deadline, remaining: () => ctx.remaining() };
          return step.invoke(data as never, context);
        },
        { idempotencyKey, idempotent: false, signal: d.abort.signal, ...(sagaDeadline === undefined ? {} : { deadline: sagaDeadline }) },
      );
      if (output !== undefined && (typeof output !== 'object' || output === null || Array.isArray(output))) {
        return { ok: false, lost: false, attempts, error: new TypeError(`step "${step.name}" must return an object or nothing, got ${typeof output}`) };
      }
      return { ok: true, lost: false, attempts, output: output === undefined ? undefined : (JSON.parse(JSON.stringify(output)) as Record<string, unknown>) };
    } catch (error) {
      return { ok: false, lost: d.abort.signal.aborted, attempts, error };
    }
  }

  private async compensate(d: Driven, step: StepDefinition): Promise<CallResult> {
    const policies = this.policiesOf(step);
    const invokeKey = `${d.id}:${step.name}`;
    const idempotencyKey = `${invokeKey}:compensate`;
    const data = this.dataBefore(d, step.index);
    const output = d.outputs[step.name];
    let attempts = 0;
    this.stepStarted(d, step, 'compensate');
    try {
      await policies.compensate.execute(
        (ctx) => {
          attempts = ctx.attempt;
          this.checkLease(d);
          const context: CompensationContext<never> = {
            sagaId: d.id,
            sagaType: d.def.name,
            step: step.name,
            idempotencyKey,
            invokeKey,
            output: output as never,
            attempt: ctx.attempt,
            signal: ctx.signal,
            deadline: ctx.deadline,
            remaining: () => ctx.remaining(),
          };
          return (step.compensate as NonNullable<StepDefinition['compensate']>)(data as never, context);
        },
        { idempotencyKey, idempotent: false, signal: d.abort.signal },
      );
      return { ok: true, lost: false, attempts };
    } catch (error) {
      return { ok: false, lost: d.abort.signal.aborted, attempts, error };
    }
  }

  /** Stops a call before it reaches a participant when this process can no longer be sure it owns the saga. */
  private checkLease(d: Driven): void {
    if (Math.max(d.leaseUntil, this.renewedUntil) <= this.now()) {
      this.lost(d);
      throw d.abort.signal.reason;
    }
  }

  private lost(d: Driven): void {
    if (d.abort.signal.aborted) return;
    d.abort.abort(new Error(`lease on saga ${d.id} lost`));
    this.events.emit('lease-lost', ref(d));
  }

  /** The input merged with the outputs of the steps before `index`. */
  private dataBefore(d: Driven, index: number): Record<string, unknown> {
    let data = d.input;
    for (let i = 0; i < index; i++) {
      const out = d.outputs[(d.def.steps[i] as StepDefinition).name];
      if (out !== undefined) data = { ...data, ...(out as Record<string, unknown>) };
    }
    return data;
  }

  /** A fenced progress write; on success applies it to `d`, on a lost lease stops driving `d`. */
  private async write(d: Driven, change: Partial<Pick<Driven, 'state' | 'phase' | 'stepIndex' | 'outputs' | 'failedStep' | 'error'>>, logs: StepLogRow[]): Promise<boolean> {
    const state = change.state ?? d.state;
    const settled = state !== 'running' && state !== 'compensating';
    const progress: Progress = {
      id: d.id,
      owner: this.owner,
      epoch: d.epoch,
      state,
      phase: change.phase ?? d.phase,
      stepIndex: change.stepIndex ?? d.stepIndex,
      outputs: change.outputs === undefined ? null : JSON.stringify(change.outputs),
      failedStep: change.failedStep === undefined ? d.failedStep : change.failedStep,
      error: change.error === undefined ? d.error : change.error,
      logSeq: d.logSeq + logs.length,
      updatedAt: this.now(),
      leaseUntil: settled ? 0 : Math.max(d.leaseUntil, this.renewedUntil),
      logs,
    };
    let applied: boolean | undefined;
    for (let attempt = 0; applied === undefined; attempt++) {
      try {
        applied = await this.writer.progress(progress);
      } catch (error) {
        if (!isUnreachable(error)) return this.unwritable(d, error);
        // The database is unreachable: retry while the lease can still be ours; then another orchestrator takes over.
        if (attempt >= 8 || Math.max(d.leaseUntil, this.renewedUntil) <= this.now()) {
          this.events.emit('error', { where: `writing saga ${d.id}`, error });
          this.lost(d);
          return false;
        }
        await new Promise<void>((resolve) => this.clock.setTimer(resolve, Math.min(50 * 2 ** attempt, 2_000)));
      }
    }
    if (!applied) {
      this.lost(d);
      return false;
    }
    Object.assign(d, change);
    d.logSeq = progress.logSeq;
    return true;
  }

  /**
   * The database refused the write itself (not a lost connection): retrying it, or letting
   * another orchestrator redo the step, would fail the same way forever. Park the saga as
   * `stuck` with the reason, writing nothing else, for an operator.
   */
  private async unwritable(d: Driven, error: unknown): Promise<false> {
    this.events.emit('error', { where: `writing saga ${d.id}`, error });
    const reason = `could not record the saga's progress: ${describe(error)}`;
    const stuck: Progress = {
      id: d.id,
      owner: this.owner,
      epoch: d.epoch,
      state: 'stuck',
      phase: d.phase,
      stepIndex: d.stepIndex,
      outputs: null,
      failedStep: d.failedStep,
      error: reason,
      logSeq: d.logSeq,
      updatedAt: this.now(),
      leaseUntil: 0,
      logs: [],
    };
    try {
      if ((await this.repository.progress([stuck])).has(d.id)) {
        d.state = 'stuck';
        d.error = reason;
        this.events.emit('stuck', { ...ref(d), step: (d.def.steps[d.stepIndex])?.name ?? '', phase: d.phase === 'forward' ? 'invoke' : 'compensate', error: reason });
        this.settle(d);
        return false;
      }
    } catch (again) {
      this.events.emit('error', { where: `parking saga ${d.id} as stuck`, error: again });
    }
    this.lost(d);
    return false;
  }

  private log(d: Driven, step: StepDefinition, phase: 'invoke' | 'compensate', result: CallResult, startedAt: number, finishedAt: number): StepLogRow {
    return {
      sagaId: d.id,
      seq: d.logSeq + 1,
      step: step.name,
      phase,
      outcome: result.ok ? 'succeeded' : 'failed',
      attempts: Math.max(result.attempts, 1),
      startedAt,
      finishedAt,
      error: result.ok ? null : describe(result.error),
    };
  }

  /** `d` reached completed, compensated or stuck: tell waiters, feed the entry guard, free its lock. */
  private settle(d: Driven): void {
    const now = this.now();
    const durationMs = now - d.createdAt;
    if (d.state === 'completed') this.events.emit('completed', { ...ref(d), durationMs });
    else if (d.state === 'compensated') this.events.emit('compensated', { ...ref(d), durationMs });
    this.guard?.record(d.def.name, d.state !== 'completed', now);
    const waiting = this.waiters.get(d.id);
    if (waiting !== undefined) {
      const outcome: SagaOutcome = { id: d.id, state: d.state, data: this.dataBefore(d, d.def.steps.length), failedStep: d.failedStep, error: d.error };
      for (const resolve of [...waiting]) resolve(outcome);
    }
    if (d.lockKey !== null && TERMINAL.has(d.state)) void this.promote(d.lockKey);
  }

  private async promote(lockKey: string): Promise<void> {
    try {
      if ((await this.repository.promoteQueued(lockKey, this.now())) !== undefined) this.claimSoon();
    } catch (error) {
      this.events.emit('error', { where: `promoting the saga queued on "${lockKey}"`, error });
    }
  }

  /** Gives `d` up for any orchestrator to claim at once (fenced: a no-op when another already owns it). */
  private releaseOne(d: Driven): Promise<void> {
    return this.repository.release(this.owner, [{ id: d.id, epoch: d.epoch }]);
  }

  private policiesOf(step: StepDefinition): StepPolicies {
    let p = this.policies.get(step);
    if (p === undefined) this.policies.set(step, (p = stepPolicies(step, this.clock)));
    return p;
  }

  private stepStarted(d: Driven, step: StepDefinition, phase: 'invoke' | 'compensate'): void {
    if (this.events.has('step-started')) this.events.emit('step-started', { ...ref(d), step: step.name, phase });
  }

  private stepEvent(event: 'step-succeeded' | 'step-failed', d: Driven, step: StepDefinition, phase: 'invoke' | 'compensate', result: CallResult, durationMs: number): void {
    if (!this.events.has(event)) return;
    if (event === 'step-succeeded') this.events.emit(event, { ...ref(d), step: step.name, phase, attempts: result.attempts, durationMs });
    else this.events.emit(event, { ...ref(d), step: step.name, phase, attempts: result.attempts, durationMs, error: describe(result.error) });
  }

  // ---------------------------------------------------------------- background

  /** Claims sagas whose lease expired (crashed or closed owners, releases, promotions, operator actions). */
  private claimSoon(): void {
    if (this.closed) return;
    if (this.claiming !== undefined) {
      this.claimAgain = true;
      return;
    }
    this.claiming = this.claim()
      .catch((error: unknown) => this.events.emit('error', { where: 'claiming sagas', error }))
      .finally(() => {
        this.claiming = undefined;
        if (this.claimAgain) {
          this.claimAgain = false;
          this.claimSoon();
        }
      });
  }

  private async claim(): Promise<void> {
    const free = this.maxConcurrent - this.driving.size - this.reserved;
    if (free <= 0) {
      this.backlog = true;
      return;
    }
    const now = this.now();
    const rows = await this.repository.claim(this.owner, now, now + this.leaseMs, [...this.definitions.values()], Math.min(free, 100));
    for (const row of rows) {
      const def = this.definitions.get(`${row.type}@${row.version}`);
      if (def === undefined) continue;
      if (this.closed) {
        await this.repository.release(this.owner, [{ id: row.id, epoch: row.leaseEpoch }]);
        continue;
      }
      this.events.emit('lease-taken', { sagaId: row.id, type: row.type, version: row.version, epoch: row.leaseEpoch });
      const next = this.driven(row, def);
      const stale = this.driving.get(row.id);
      if (stale === undefined) {
        this.drive(next);
        continue;
      }
      // This process still drives an older epoch of it (an operator changed it meanwhile): stop that one first.
      this.lost(stale);
      this.driving.set(row.id, next);
      void stale.done.then(() => this.drive(next));
    }
    this.backlog = rows.length === Math.min(free, 100);
    if (this.backlog) this.claimAgain = true;
  }

  /** Renews every lease this process holds; a saga whose lease was not renewed was taken away: stop driving it. */
  private async heartbeat(): Promise<void> {
    if (this.driving.size === 0) return;
    const asOf = this.now();
    const until = asOf + this.leaseMs;
    try {
      const held = await this.repository.heartbeat(this.owner, until);
      this.renewedUntil = until;
      for (const d of this.driving.values()) if (d.claimedAt < asOf && !held.has(d.id)) this.lost(d);
    } catch (error) {
      this.events.emit('error', { where: 'renewing saga leases', error });
    }
  }

  private async maintain(): Promise<void> {
    try {
      for (const key of await this.repository.queuedKeys(100)) await this.promote(key);
      const now = this.now();
      for (const row of await this.repository.overdue(now, 100)) {
        if (this.reportedOverdue.has(row.id)) continue;
        if (this.reportedOverdue.size > 10_000) this.reportedOverdue.clear();
        this.reportedOverdue.add(row.id);
        this.events.emit('overdue', { sagaId: row.id, type: row.type, version: row.version, state: row.state, overdueMs: now - (row.deadlineAt ?? now) });
      }
    } catch (error) {
      this.events.emit('error', { where: 'saga maintenance', error });
    }
  }
}

/** Creates an orchestrator and starts its background work (resuming sagas that crashed owners left). */
export function createSagaOrchestrator(options: SagaOrchestratorOptions): Promise<SagaOrchestrator> {
  return new SagaOrchestrator(options).open();
}
