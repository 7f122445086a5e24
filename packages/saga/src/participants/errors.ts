/**
 * Errors of saga participant calls, whatever the transport.
 *
 * The saga's retry policy reads `retryable` (then `status`) through
 * `isTransient`, and the orchestrator reads it again when a step fails for
 * good: a transient failure means the step may have taken effect, so it is
 * compensated too; a refusal means it did not.
 *
 * | class | code | retryable | when |
 * | --- | --- | --- | --- |
 * | `ParticipantRefusedError` | `BULWARK_SAGA_PARTICIPANT_REFUSED` | no | HTTP 4xx (but 408, 429 and kit "in progress" answers); a reply saying refused |
 * | `ParticipantUnavailableError` | `BULWARK_SAGA_PARTICIPANT_UNAVAILABLE` | yes | HTTP 5xx, 408, 429, network failure or timeout; a reply saying "refused for now" |
 * | `ParticipantNoReplyError` | `BULWARK_SAGA_PARTICIPANT_NO_REPLY` | yes | no reply to a command within the wait |
 * | `ParticipantConfigError` | `BULWARK_SAGA_PARTICIPANT_CONFIG` | no | an unusable option or an unknown operation |
 *
 * Identity survives two installed copies of the package (`Symbol.for` brand).
 *
 * @example
 * ```ts
 * try { await payments.call('charge', { amount }, ctx) }
 * catch (e) { if (e instanceof ParticipantRefusedError) log.info({ reason: e.reason }, 'declined'); throw e }
 * ```
 */
import { isInstanceOfErrorClass } from '@bulwark/resilience';
import { SagaError, sagaErrorCodes } from '../errors.js';

const kBrand = Symbol.for('bulwark.saga.participant.error');

/** The participant codes of the saga error family (`sagaErrorCodes`). */
export const participantErrorCodes = {
  BULWARK_SAGA_PARTICIPANT_REFUSED: sagaErrorCodes.BULWARK_SAGA_PARTICIPANT_REFUSED,
  BULWARK_SAGA_PARTICIPANT_UNAVAILABLE: sagaErrorCodes.BULWARK_SAGA_PARTICIPANT_UNAVAILABLE,
  BULWARK_SAGA_PARTICIPANT_NO_REPLY: sagaErrorCodes.BULWARK_SAGA_PARTICIPANT_NO_REPLY,
  BULWARK_SAGA_PARTICIPANT_CONFIG: sagaErrorCodes.BULWARK_SAGA_PARTICIPANT_CONFIG,
} as const;

export type ParticipantErrorCode = keyof typeof participantErrorCodes;

/** Base class of every participant error: members of the saga error family (`SagaError`, `isSagaError`) with a brand of their own. */
export class ParticipantError extends SagaError {
  declare readonly code: ParticipantErrorCode;
  /** The participant's name. */
  readonly participant: string;
  /** The operation called (`charge`, `payments.refund`, ...). */
  readonly operation: string;

  constructor(code: ParticipantErrorCode, participant: string, operation: string, message: string, options: { retryable?: boolean; status?: number | undefined; cause?: unknown } = {}) {
    super(code, `${participant}.${operation}: ${message}`, {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(options.retryable === undefined ? {} : { retryable: options.retryable }),
      ...(options.status === undefined ? {} : { status: options.status }),
    });
    this.participant = participant;
    this.operation = operation;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isParticipantError);
  }
}

Object.defineProperty(ParticipantError.prototype, kBrand, { value: true });

/** True for a participant error from any installed copy of the package. */
export function isParticipantError(value: unknown): value is ParticipantError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true && typeof (value as { code?: unknown }).code === 'string';
}

/**
 * The participant refused: the operation took no effect and repeating it will
 * not help. The saga compensates the steps before it (not this one).
 */
export class ParticipantRefusedError extends ParticipantError {
  static override readonly code = 'BULWARK_SAGA_PARTICIPANT_REFUSED';
  constructor(
    participant: string,
    operation: string,
    /** Why, as the participant said it (a problem's `detail`/`title`, a reply's `reason`). */
    readonly reason: string,
    readonly details: {
      /** The HTTP status, for a call over HTTP. */
      status?: number;
      /** The participant's own error code (a problem's `code`, a reply's `code`). */
      participantCode?: string;
      /** The problem document of an HTTP refusal. */
      problem?: Readonly<Record<string, unknown>>;
      cause?: unknown;
    } = {},
  ) {
    // `status`: the participant's own (what `statusOf` reads) when it answered over HTTP, else 422.
    super('BULWARK_SAGA_PARTICIPANT_REFUSED', participant, operation, `refused${details.status === undefined ? '' : ` (${details.status})`}: ${reason}`, { cause: details.cause, status: details.status });
  }
}

/** The participant could not answer now; the same call (same idempotency key) may succeed later. */
export class ParticipantUnavailableError extends ParticipantError {
  static override readonly code = 'BULWARK_SAGA_PARTICIPANT_UNAVAILABLE';
  /** How long the participant asked to wait (`Retry-After`); the retry policy honours it. */
  readonly retryAfterMs: number | undefined;
  constructor(participant: string, operation: string, reason: string, details: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super('BULWARK_SAGA_PARTICIPANT_UNAVAILABLE', participant, operation, `unavailable${details.status === undefined ? '' : ` (${details.status})`}: ${reason}`, { cause: details.cause, status: details.status });
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** No reply to a command within the wait. The command may have been applied; sending it again with the same key is safe. */
export class ParticipantNoReplyError extends ParticipantError {
  static override readonly code = 'BULWARK_SAGA_PARTICIPANT_NO_REPLY';
  constructor(
    participant: string,
    operation: string,
    readonly idempotencyKey: string,
    readonly waitedMs: number,
  ) {
    super('BULWARK_SAGA_PARTICIPANT_NO_REPLY', participant, operation, `no reply to command ${idempotencyKey} within ${waitedMs} ms`);
  }
}

/** An unusable option, or an operation the participant does not know. */
export class ParticipantConfigError extends ParticipantError {
  static override readonly code = 'BULWARK_SAGA_PARTICIPANT_CONFIG';
  constructor(
    participant: string,
    readonly option: string,
    reason: string,
  ) {
    super('BULWARK_SAGA_PARTICIPANT_CONFIG', participant, option, reason);
  }
}

/**
 * What a command handler throws to refuse for good: the reply says refused,
 * is stored under the idempotency key (a repeat gets the same refusal), and
 * the handler's writes are rolled back. With `retryable: true` the refusal is
 * "not now": not stored, and the orchestrator asks again later.
 *
 * @example
 * ```ts
 * if (balance < amount) throw refuse('insufficient funds', { code: 'INSUFFICIENT_FUNDS' });
 * ```
 */
export function refuse(reason: string, options: { code?: string; retryable?: boolean } = {}): Error & { retryable: boolean; refusal: true; participantCode?: string } {
  return Object.assign(new Error(reason), { name: 'CommandRefusal', retryable: options.retryable ?? false, refusal: true as const, ...(options.code === undefined ? {} : { participantCode: options.code }) });
}
