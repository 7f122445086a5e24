/**
 * Saga errors as RFC 9457 problems: one stable `type` URI per saga error
 * code, under the kit's base (`https://bulwark.dev/problems/saga-...`), with
 * the status `errors.ts` gives every code.
 *
 * The kit renders anything thrown with `toProblem()`, so the routes convert a
 * `SagaError` into a `ProblemError` (`sagaProblem`) and let the kit's error
 * handler answer. Extension members: `code`, `retryable`, and what the error
 * names (`sagaId`, `state`, `field` with `invalid-params`, `lockKey`, ...). A
 * 5xx problem discloses no detail, like every kit 5xx.
 *
 * @example
 * ```ts
 * import { sagaProblemTypes, sagaProblem } from '@bulwark/saga/http';
 * sagaProblemTypes.BULWARK_SAGA_NOT_FOUND.type; // 'https://bulwark.dev/problems/saga-not-found'
 * try { await admin.get(id) } catch (e) { throw sagaProblem(e) } // a ProblemError for saga errors, `e` otherwise
 * ```
 */
import { ProblemError, problemTypeUri } from '@bulwark/http';
import { InvalidSagaActionError, SagaLockedError, SagaNotFoundError, SagaRefusedError, SagaStateError, isSagaError, sagaErrorCodes, type SagaErrorCode } from '../errors.js';

/** One saga problem type: its URI, title and the status of its code. */
export interface SagaProblemType {
  readonly slug: string;
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly retryable: boolean;
}

const slugs = {
  BULWARK_SAGA_DEFINITION: ['saga-definition-invalid', 'Invalid saga definition'],
  BULWARK_SAGA_CONFIG: ['saga-config-invalid', 'Invalid saga orchestrator option'],
  BULWARK_SAGA_INPUT: ['saga-input-invalid', 'Invalid saga input'],
  BULWARK_SAGA_LOCKED: ['saga-locked', 'Business key locked by another saga'],
  BULWARK_SAGA_REFUSED: ['saga-refused', 'New sagas refused (entry backpressure)'],
  BULWARK_SAGA_NOT_FOUND: ['saga-not-found', 'Saga not found'],
  BULWARK_SAGA_STATE: ['saga-state-conflict', "Action not allowed in the saga's state"],
  BULWARK_SAGA_ACTION_INVALID: ['saga-action-invalid', 'Invalid operator action'],
  BULWARK_SAGA_UNKNOWN_DEFINITION: ['saga-unknown-definition', 'Saga definition not registered'],
  BULWARK_SAGA_CLOSED: ['saga-orchestrator-closed', 'Saga orchestrator shutting down'],
  BULWARK_SAGA_TIMEOUT: ['saga-wait-timeout', 'Saga outcome not reached in time'],
  BULWARK_SAGA_PARTICIPANT_REFUSED: ['saga-participant-refused', 'A saga participant refused the operation'],
  BULWARK_SAGA_PARTICIPANT_UNAVAILABLE: ['saga-participant-unavailable', 'A saga participant is unavailable'],
  BULWARK_SAGA_PARTICIPANT_NO_REPLY: ['saga-participant-no-reply', 'A saga participant did not reply in time'],
  BULWARK_SAGA_PARTICIPANT_CONFIG: ['saga-participant-config-invalid', 'Invalid saga participant option'],
} as const satisfies Record<SagaErrorCode, readonly [string, string]>;

/** The problem type of every saga error code (a test keeps it complete and its URIs unique). */
export const sagaProblemTypes: Readonly<Record<SagaErrorCode, SagaProblemType>> = Object.freeze(
  Object.fromEntries(
    (Object.keys(slugs) as SagaErrorCode[]).map((code) => {
      const [slug, title] = slugs[code];
      return [code, Object.freeze({ slug, type: problemTypeUri(slug), title, status: sagaErrorCodes[code].status, retryable: sagaErrorCodes[code].retryable })];
    }),
  ) as Record<SagaErrorCode, SagaProblemType>,
);

/**
 * The problem of a saga error (a `ProblemError` the kit renders), or `error`
 * itself when it is not one: `throw sagaProblem(error)` in a catch.
 */
export function sagaProblem(error: unknown): unknown {
  if (!isSagaError(error)) return error;
  const known = (sagaProblemTypes as Partial<Record<string, SagaProblemType>>)[error.code];
  if (known === undefined) return error;
  const status = Number.isInteger(error.status) && error.status >= 400 && error.status <= 599 ? error.status : known.status;
  const extensions: Record<string, unknown> = { code: error.code, retryable: error.retryable };
  const headers: Record<string, string> = {};
  if (error instanceof SagaNotFoundError) extensions.sagaId = error.sagaId;
  if (error instanceof SagaStateError) Object.assign(extensions, { sagaId: error.sagaId, state: error.state });
  if (error instanceof InvalidSagaActionError) Object.assign(extensions, { field: error.field, 'invalid-params': [{ in: fieldLocation(error.field), name: error.field, reason: error.message }] });
  if (error instanceof SagaLockedError) Object.assign(extensions, { lockKey: error.lockKey, holder: error.holder ?? null });
  if (error instanceof SagaRefusedError) headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
  return new ProblemError({
    type: known.type,
    status,
    title: known.title,
    // A 5xx discloses nothing beyond its type and code (the kit's rule); a 503/504 says what to wait for.
    ...(status === 500 ? {} : { detail: error.message }),
    extensions,
    headers,
    code: error.code,
    retryable: error.retryable,
    cause: error,
  });
}

/** Where an operator request carries a field the admin API refused. */
function fieldLocation(field: string): string {
  if (field === 'reason') return 'body';
  if (field === 'actor') return 'identity';
  return 'querystring';
}
