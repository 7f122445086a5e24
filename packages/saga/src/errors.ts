/**
 * The error family of `@bulwark/saga`.
 *
 * Same contract as every Bulwark package: a stable string `code`, a
 * `retryable` classification, the HTTP status an API maps it to, and an
 * identity that survives two installed copies of the package (a
 * `Symbol.for` brand read by `instanceof`).
 */
import { isInstanceOfErrorClass } from '@bulwark/resilience';

const kBulwarkBrand = Symbol.for('bulwark.error');
const kSagaBrand = Symbol.for('bulwark.saga.error');

/** Stable codes, their meaning and the HTTP status an API maps them to. */
export const sagaErrorCodes = {
  BULWARK_SAGA_DEFINITION: { status: 500, retryable: false, description: 'A saga definition is invalid (duplicate step names, a missing compensation, two pivots, ...); `path` names the field.' },
  BULWARK_SAGA_CONFIG: { status: 500, retryable: false, description: 'An orchestrator option is invalid; `key` names it.' },
  BULWARK_SAGA_INPUT: { status: 400, retryable: false, description: "A saga's input failed its schema; nothing was persisted." },
  BULWARK_SAGA_LOCKED: { status: 409, retryable: true, description: 'Another saga holds the semantic lock on the same business key.' },
  BULWARK_SAGA_REFUSED: { status: 503, retryable: true, description: 'Entry backpressure: too many recent sagas of this type failed; new ones are refused for now.' },
  BULWARK_SAGA_NOT_FOUND: { status: 404, retryable: false, description: 'No saga with that id.' },
  BULWARK_SAGA_STATE: { status: 409, retryable: false, description: "The operator action is not allowed in the saga's current state." },
  BULWARK_SAGA_ACTION_INVALID: { status: 400, retryable: false, description: 'An operator action is missing its actor or reason, or has an invalid filter; `field` names it.' },
  BULWARK_SAGA_UNKNOWN_DEFINITION: { status: 500, retryable: false, description: 'The saga type or version is not registered with this orchestrator.' },
  BULWARK_SAGA_CLOSED: { status: 503, retryable: true, description: 'The orchestrator is shutting down and takes no new sagas.' },
  BULWARK_SAGA_TIMEOUT: { status: 504, retryable: true, description: 'Waiting for a saga outcome took longer than asked; the saga itself goes on.' },
  BULWARK_SAGA_PARTICIPANT_REFUSED: { status: 422, retryable: false, description: 'A participant refused the operation for good (HTTP 4xx, or a refused reply); it took no effect. `status` is the participant\'s own when it answered over HTTP.' },
  BULWARK_SAGA_PARTICIPANT_UNAVAILABLE: { status: 503, retryable: true, description: 'A participant could not answer now (HTTP 5xx/408/429, network failure, timeout, or a reply refusing for now); retried with the same idempotency key.' },
  BULWARK_SAGA_PARTICIPANT_NO_REPLY: { status: 504, retryable: true, description: 'No reply to a command arrived in time; the command is sent again with the same idempotency key.' },
  BULWARK_SAGA_PARTICIPANT_CONFIG: { status: 500, retryable: false, description: 'A participant option is unusable, or the operation is not one the participant knows; `option` names it.' },
} as const satisfies Record<string, { status: number; retryable: boolean; description: string }>;

export type SagaErrorCode = keyof typeof sagaErrorCodes;

/** Base class of every saga error. */
export class SagaError extends Error {
  /** Code of the class, read by `instanceof` checks. */
  static readonly code: string | undefined = undefined;

  readonly code: SagaErrorCode;
  readonly retryable: boolean;
  readonly status: number;

  constructor(code: SagaErrorCode, message: string, options: { cause?: unknown; retryable?: boolean; status?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? sagaErrorCodes[code].retryable;
    this.status = options.status ?? sagaErrorCodes[code].status;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isSagaError);
  }
}

// The brands live on the prototype: every installed copy sets the same `Symbol.for` keys.
Object.defineProperty(SagaError.prototype, kBulwarkBrand, { value: true });
Object.defineProperty(SagaError.prototype, kSagaBrand, { value: true });

/** True for an error of this family, from any installed copy of the package. */
export function isSagaError(value: unknown): value is SagaError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kSagaBrand] === true && typeof (value as { code?: unknown }).code === 'string';
}

/** A definition is unusable; `path` names the field (`steps[2].compensate`). Thrown at `defineSaga` / `build()`. */
export class SagaDefinitionError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_DEFINITION';
  constructor(
    readonly saga: string,
    readonly path: string,
    reason: string,
  ) {
    super('BULWARK_SAGA_DEFINITION', `saga "${saga}": ${path} ${reason}`);
  }
}

/** An orchestrator option is unusable; `key` names it. Stops start-up. */
export class SagaConfigError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_CONFIG';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super('BULWARK_SAGA_CONFIG', `saga orchestrator option "${key}": ${reason}`);
  }
}

/** The input failed the saga's schema; nothing was persisted. */
export class InvalidSagaInputError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_INPUT';
  constructor(
    readonly saga: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('BULWARK_SAGA_INPUT', `saga "${saga}": invalid input: ${reason}`, options);
  }
}

/** Another saga, `holder`, holds the semantic lock on `lockKey`. */
export class SagaLockedError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_LOCKED';
  constructor(
    readonly saga: string,
    readonly lockKey: string,
    readonly holder: string | undefined,
  ) {
    super('BULWARK_SAGA_LOCKED', `saga "${saga}": the business key "${lockKey}" is locked by saga ${holder ?? '(finishing)'}`);
  }
}

/** Entry backpressure refused a new saga: the recent failure rate is above the threshold. */
export class SagaRefusedError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_REFUSED';
  constructor(
    readonly saga: string,
    readonly failureRate: number,
    /** When the window will have moved past the failures that closed the entry (ms). */
    readonly retryAfterMs: number,
  ) {
    super('BULWARK_SAGA_REFUSED', `saga "${saga}": refused, ${(failureRate * 100).toFixed(1)}% of recent sagas failed`);
  }
}

export class SagaNotFoundError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_NOT_FOUND';
  constructor(readonly sagaId: string) {
    super('BULWARK_SAGA_NOT_FOUND', `no saga ${sagaId}`);
  }
}

/** The operator action is not allowed in the saga's current state. */
export class SagaStateError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_STATE';
  constructor(
    readonly sagaId: string,
    readonly state: string,
    reason: string,
  ) {
    super('BULWARK_SAGA_STATE', `saga ${sagaId} is ${state}: ${reason}`);
  }
}

export class UnknownSagaDefinitionError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_UNKNOWN_DEFINITION';
  constructor(
    readonly saga: string,
    readonly version: number | undefined,
  ) {
    super('BULWARK_SAGA_UNKNOWN_DEFINITION', `saga "${saga}"${version === undefined ? '' : ` v${version}`} is not registered with this orchestrator`);
  }
}

export class SagaClosedError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_CLOSED';
  constructor() {
    super('BULWARK_SAGA_CLOSED', 'the saga orchestrator is closed');
  }
}

export class SagaWaitTimeoutError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_TIMEOUT';
  constructor(readonly sagaId: string) {
    super('BULWARK_SAGA_TIMEOUT', `saga ${sagaId} did not finish in time (it goes on)`);
  }
}

/** An operator request is malformed (no actor, no reason, a bad filter); `field` names it. */
export class InvalidSagaActionError extends SagaError {
  static override readonly code = 'BULWARK_SAGA_ACTION_INVALID';
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super('BULWARK_SAGA_ACTION_INVALID', `${field} ${reason}`);
  }
}
