/**
 * Saga definitions: a name, a version, an input schema and an ordered list of
 * steps, built with a typed builder so each step sees the input plus every
 * earlier step's output.
 *
 * Steps come in the three kinds of the saga literature (Garcia-Molina &
 * Salem; Richardson's "compensatable / pivot / retriable"):
 * - before the pivot, every step is **compensatable**: it has `compensate`,
 *   run in reverse order when a later step fails for good;
 * - the **pivot** (`pivot: true`, at most one) is the go/no-go step: it needs
 *   no compensation (declare it irreversible this way); once it succeeds the
 *   saga only goes forward;
 * - after the pivot, steps are **retriable**: they have no compensation and
 *   are retried until they succeed; when they cannot, the saga is `stuck`
 *   for an operator.
 * A saga without a pivot is compensatable throughout.
 *
 * Steps run in the order given: the builder has no way to express a cycle,
 * so none can be registered.
 *
 * @example
 * ```ts
 * const createOrder = defineSaga('CreateOrder', {
 *   version: 1,
 *   input: (raw) => parseOrderInput(raw),          // throws on bad input
 *   lockKey: (input) => `order:${input.orderId}`,   // semantic lock
 *   deadlineMs: 60_000,
 * })
 *   .step('reserveInventory', {
 *     invoke: (data, ctx) => inventory.reserve(data.items, { idempotencyKey: ctx.idempotencyKey, signal: ctx.signal }),
 *     compensate: (data, ctx) => inventory.release({ idempotencyKey: ctx.idempotencyKey, reservation: ctx.invokeKey }),
 *   })
 *   .step('chargePayment', { invoke: ..., compensate: ..., retry: { maxAttempts: 5 } })
 *   .step('confirmOrder', { invoke: ..., pivot: true })
 *   .build();
 * ```
 */
import { type BackoffOptions, type RetryOptions } from '@bulwark/resilience';
import { SagaDefinitionError } from './errors.js';

/** What a step's `invoke` receives besides the data. */
export interface StepContext {
  readonly sagaId: string;
  readonly sagaType: string;
  readonly step: string;
  /**
   * `sagaId:step` — send it with the participant call (Idempotency-Key
   * header, command id). Identical on every retry and after every restart.
   */
  readonly idempotencyKey: string;
  /** 1 for the first attempt in this process; a restart counts again from 1. */
  readonly attempt: number;
  /** Aborted when the attempt, the step or the saga runs out of time, or the orchestrator loses the saga. */
  readonly signal: AbortSignal;
  /** Absolute deadline on the orchestrator's clock (`Infinity` when none). */
  readonly deadline: number;
  /** Milliseconds left before the deadline. */
  remaining(): number;
}

/** What a step's `compensate` receives. */
export interface CompensationContext<Out> extends StepContext {
  /** The step's invoke key (`sagaId:step`): the operation to undo. `idempotencyKey` is `sagaId:step:compensate`. */
  readonly invokeKey: string;
  /**
   * The step's output, or `undefined` when its outcome is unknown (it timed
   * out or the connection dropped, so it may or may not have taken effect):
   * the participant must then find the operation by `invokeKey`, and treat a
   * compensation for an operation it never applied as done.
   */
  readonly output: Out | undefined;
}

/** A step's output: an object merged into the saga's data, or nothing. */
export type StepOutput = Record<string, unknown> | undefined | void;

type Merge<Data, Out> = Out extends Record<string, unknown> ? Omit<Data, keyof Out> & Out : Data;

export interface StepOptions<Data, Out extends StepOutput> {
  /** Calls the participant. Its output (JSON) is merged into the data later steps see. */
  invoke: (data: Data, ctx: StepContext) => Promise<Out>;
  /** Undoes the step. Required before the pivot; not allowed after it. */
  compensate?: (data: Data, ctx: CompensationContext<Out>) => Promise<void>;
  /** The irreversible go/no-go step (at most one). */
  pivot?: boolean;
  /**
   * Retries of `invoke` (`@bulwark/resilience` retry options). Default: 3
   * attempts, exponential backoff with full jitter from 100 ms, transient
   * errors only (a participant's refusal is final). Steps after the pivot
   * default to 10 attempts of any error, like compensations.
   */
  retry?: Omit<RetryOptions, 'clock'>;
  /** Budget for the whole step, retries included; when it runs out the step has failed for good. */
  timeoutMs?: number;
  /** Budget for one attempt; a timed-out attempt is retried. */
  attemptTimeoutMs?: number;
  /**
   * Retries of `compensate`. Default: 10 attempts of any error (a
   * compensation must not give up lightly), backoff from 200 ms capped at
   * 30 s. When they run out the saga is `stuck`.
   */
  compensationRetry?: Omit<RetryOptions, 'clock'>;
}

/** A step as the orchestrator sees it. */
export interface StepDefinition {
  readonly name: string;
  readonly index: number;
  readonly kind: 'compensatable' | 'pivot' | 'retriable';
  readonly invoke: (data: never, ctx: StepContext) => Promise<StepOutput>;
  readonly compensate: ((data: never, ctx: CompensationContext<never>) => Promise<void>) | undefined;
  readonly retry: Omit<RetryOptions, 'clock'>;
  readonly compensationRetry: Omit<RetryOptions, 'clock'>;
  readonly timeoutMs: number | undefined;
  readonly attemptTimeoutMs: number | undefined;
}

export interface SagaOptions<Input> {
  /** Definitions of one name are versioned; in-flight sagas finish on the version they started with. Default 1. */
  version?: number;
  /** Parses and checks the input; throws (with a message) when it is invalid. Must return a JSON object. */
  input: (raw: unknown) => Input;
  /** The business key a saga locks while it runs (`order:42`); a second saga on it is refused or queued. */
  lockKey?: (input: Input) => string | undefined;
  /** What a second saga on a locked key does: `refuse` (default, `SagaLockedError`) or `queue` behind the holder. */
  onLocked?: 'refuse' | 'queue';
  /** Time from start by which the saga must have passed its pivot; past it, it compensates. Reported when overdue. */
  deadlineMs?: number;
}

/**
 * A built definition. Covariant in its type parameters, so definitions of
 * different inputs fit one `SagaDefinition[]`.
 */
export interface SagaDefinition<Input = unknown, Data = unknown> {
  readonly name: string;
  readonly version: number;
  readonly steps: readonly StepDefinition[];
  /** Index of the pivot step, or -1. */
  readonly pivotIndex: number;
  readonly parseInput: (raw: unknown) => Input;
  /** The lock key of a parsed input. */
  readonly lockKey: ((input: never) => string | undefined) | undefined;
  readonly onLocked: 'refuse' | 'queue';
  readonly deadlineMs: number | undefined;
  /** Phantom: the data after the last step. */
  readonly __data?: Data;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/;

const DEFAULT_RETRY: Omit<RetryOptions, 'clock'> = { maxAttempts: 3, backoff: { baseMs: 100, capMs: 5_000 } };
const PERSISTENT_BACKOFF: BackoffOptions = { baseMs: 200, capMs: 30_000 };
const PERSISTENT_RETRY: Omit<RetryOptions, 'clock'> = { maxAttempts: 10, backoff: PERSISTENT_BACKOFF, retryOn: () => true };

interface PendingStep {
  name: string;
  options: StepOptions<never, StepOutput>;
}

/** Builds a saga definition step by step; `build()` validates it. */
export class SagaBuilder<Input, Data> {
  constructor(
    private readonly name: string,
    private readonly options: SagaOptions<Input>,
    private readonly pending: readonly PendingStep[],
  ) {}

  /** Appends a step; its output is merged into the data of the steps after it. */
  step<Out extends StepOutput>(name: string, options: StepOptions<Data, Out>): SagaBuilder<Input, Merge<Data, Out>> {
    return new SagaBuilder(this.name, this.options, [...this.pending, { name, options: options as unknown as StepOptions<never, StepOutput> }]);
  }

  /** Validates the definition; throws `SagaDefinitionError` naming the offending field. */
  build(): SagaDefinition<Input, Data> {
    const { name, options } = this;
    if (typeof name !== 'string' || !NAME.test(name)) throw new SagaDefinitionError(String(name), 'name', 'must be letters, digits, _ . - (starting with a letter, at most 100)');
    const version = options.version ?? 1;
    if (!Number.isInteger(version) || version < 1) throw new SagaDefinitionError(name, 'version', `must be an integer >= 1, got ${String(version)}`);
    if (typeof options.input !== 'function') throw new SagaDefinitionError(name, 'input', 'must be a function that parses the input');
    if (options.lockKey !== undefined && typeof options.lockKey !== 'function') throw new SagaDefinitionError(name, 'lockKey', 'must be a function of the input');
    const onLocked = options.onLocked ?? 'refuse';
    if (onLocked !== 'refuse' && onLocked !== 'queue') throw new SagaDefinitionError(name, 'onLocked', `must be "refuse" or "queue", got ${JSON.stringify(onLocked)}`);
    checkPositive(name, 'deadlineMs', options.deadlineMs);
    if (this.pending.length === 0) throw new SagaDefinitionError(name, 'steps', 'must have at least one step');

    const seen = new Set<string>();
    let pivotIndex = -1;
    const steps = this.pending.map(({ name: stepName, options: s }, index): StepDefinition => {
      const path = `steps[${index}]`;
      if (typeof stepName !== 'string' || !NAME.test(stepName)) throw new SagaDefinitionError(name, `${path}.name`, `${JSON.stringify(stepName)} must be letters, digits, _ . - (starting with a letter)`);
      if (seen.has(stepName)) throw new SagaDefinitionError(name, `${path}.name`, `"${stepName}" is used by an earlier step; step names must be unique`);
      seen.add(stepName);
      if (typeof s.invoke !== 'function') throw new SagaDefinitionError(name, `${path}.invoke`, 'must be a function');
      if (s.compensate !== undefined && typeof s.compensate !== 'function') throw new SagaDefinitionError(name, `${path}.compensate`, 'must be a function');
      if (s.pivot !== undefined && typeof s.pivot !== 'boolean') throw new SagaDefinitionError(name, `${path}.pivot`, 'must be a boolean');
      checkPositive(name, `${path}.timeoutMs`, s.timeoutMs);
      checkPositive(name, `${path}.attemptTimeoutMs`, s.attemptTimeoutMs);
      checkRetry(name, `${path}.retry`, s.retry);
      checkRetry(name, `${path}.compensationRetry`, s.compensationRetry);
      let kind: StepDefinition['kind'];
      if (s.pivot === true) {
        if (pivotIndex >= 0) throw new SagaDefinitionError(name, `${path}.pivot`, `is the second pivot (steps[${pivotIndex}] is one); a saga has at most one`);
        pivotIndex = index;
        kind = 'pivot';
      } else if (pivotIndex >= 0) {
        if (s.compensate !== undefined) throw new SagaDefinitionError(name, `${path}.compensate`, `is not allowed after the pivot (steps[${pivotIndex}]): steps after it are retried until they succeed, never compensated`);
        kind = 'retriable';
      } else {
        kind = 'compensatable';
      }
      if (kind === 'compensatable' && s.compensate === undefined) {
        throw new SagaDefinitionError(name, `${path}.compensate`, 'is missing: a step before the pivot must say how to undo it (or be the pivot, `pivot: true`, if it is irreversible)');
      }
      return Object.freeze({
        name: stepName,
        index,
        kind,
        invoke: s.invoke,
        compensate: kind === 'compensatable' ? s.compensate : undefined,
        retry: s.retry ?? (kind === 'retriable' ? PERSISTENT_RETRY : DEFAULT_RETRY),
        compensationRetry: s.compensationRetry ?? PERSISTENT_RETRY,
        timeoutMs: s.timeoutMs,
        attemptTimeoutMs: s.attemptTimeoutMs,
      });
    });
    return Object.freeze({
      name,
      version,
      steps: Object.freeze(steps),
      pivotIndex,
      parseInput: options.input,
      lockKey: options.lockKey,
      onLocked,
      deadlineMs: options.deadlineMs,
    });
  }
}

/** Starts a saga definition (see the module comment). */
export function defineSaga<Input extends Record<string, unknown>>(name: string, options: SagaOptions<Input>): SagaBuilder<Input, Input> {
  if (typeof options !== 'object' || options === null) throw new SagaDefinitionError(String(name), 'options', 'must be an object');
  return new SagaBuilder<Input, Input>(name, options, []);
}

function checkPositive(saga: string, path: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new SagaDefinitionError(saga, path, `must be a positive number of milliseconds, got ${JSON.stringify(value)}`);
}

function checkRetry(saga: string, path: string, value: Omit<RetryOptions, 'clock'> | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null) throw new SagaDefinitionError(saga, path, 'must be retry options');
  const max = value.maxAttempts;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) throw new SagaDefinitionError(saga, `${path}.maxAttempts`, `must be an integer >= 1, got ${String(max)}`);
}
