/**
 * The error family of the SLO engine (`@bulwark/telemetry/slo`).
 *
 * Same contract as `@bulwark/resilience`'s errors: a stable string `code`, a
 * `retryable` classification (read by retries and saga steps alike) and an
 * identity that survives two installed copies of the package. Every SLO error
 * carries the process-wide Bulwark brand (`Symbol.for('bulwark.error')`), so
 * resilience's `isBulwarkError` and `isTransient` recognise it, plus its own
 * brand for the guards below.
 */
import { isInstanceOfErrorClass } from '@bulwark/resilience';

const kBulwarkBrand = Symbol.for('bulwark.error');
const kSloBrand = Symbol.for('bulwark.telemetry.slo.error');

/** Stable codes, their meaning and the HTTP status an API maps them to. */
export const sloErrorCodes = {
  BULWARK_SLO_SPEC_INVALID: { status: 400, retryable: false, description: 'An SLO spec failed validation; `path` names the offending field.' },
  BULWARK_SLO_NOT_FOUND: { status: 404, retryable: false, description: 'No SLO of that name is registered with the engine.' },
  BULWARK_SLO_INVALID_RECORD: { status: 500, retryable: false, description: 'record() was called with counts that are not non-negative finite numbers with good <= total, or on an SLO fed from metrics.' },
  BULWARK_SLO_WEBHOOK_FAILED: { status: 502, retryable: true, description: 'A webhook answered 408, 429 or 5xx, or could not be reached; delivery is retried.' },
  BULWARK_SLO_WEBHOOK_REJECTED: { status: 502, retryable: false, description: 'A webhook answered another non-2xx status; retrying would not help.' },
} as const satisfies Record<string, { status: number; retryable: boolean; description: string }>;

export type SloErrorCode = keyof typeof sloErrorCodes;

/** Base class of every SLO error. */
export class SloError extends Error {
  /** Code of the class, read by `instanceof` checks. */
  static readonly code: string | undefined = undefined;

  readonly code: SloErrorCode;
  readonly retryable: boolean;

  constructor(code: SloErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = sloErrorCodes[code].retryable;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isSloError);
  }
}

// The brands live on the prototype: every installed copy sets the same `Symbol.for` keys.
Object.defineProperty(SloError.prototype, kBulwarkBrand, { value: true });
Object.defineProperty(SloError.prototype, kSloBrand, { value: true });

/** One problem found while validating a spec. */
export interface SloSpecIssue {
  /** Field path from the root of the input, e.g. `slos[2].objective`. */
  path: string;
  message: string;
}

/**
 * An SLO spec is unusable. `path` names the first offending field
 * (`slos[2].alerts[0].shortWindow`); `issues` lists every problem found, so a
 * config with three mistakes is fixed in one round.
 */
export class SloSpecError extends SloError {
  static override readonly code = 'BULWARK_SLO_SPEC_INVALID';
  readonly path: string;
  readonly issues: readonly SloSpecIssue[];
  constructor(issues: readonly SloSpecIssue[]) {
    const first = issues[0] ?? { path: '(root)', message: 'invalid' };
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1).map((i) => i.path).join(', ')})` : '';
    super('BULWARK_SLO_SPEC_INVALID', `${first.path}: ${first.message}${more}`);
    this.path = first.path;
    this.issues = issues;
  }
}

/** The engine has no SLO of that name. */
export class SloNotFoundError extends SloError {
  static override readonly code = 'BULWARK_SLO_NOT_FOUND';
  readonly slo: string;
  constructor(slo: string) {
    super('BULWARK_SLO_NOT_FOUND', `no SLO named ${JSON.stringify(slo)}`);
    this.slo = slo;
  }
}

/** `record()` got counts it cannot count: a caller bug, reported at once rather than skewing the budget. */
export class InvalidRecordError extends SloError {
  static override readonly code = 'BULWARK_SLO_INVALID_RECORD';
  readonly slo: string;
  constructor(slo: string, reason: string) {
    super('BULWARK_SLO_INVALID_RECORD', `SLO ${JSON.stringify(slo)}: ${reason}`);
    this.slo = slo;
  }
}

/**
 * A webhook POST failed in a way worth retrying: a network error, a timeout
 * or a 408/429/5xx answer. `status` is undefined when no answer came.
 */
export class WebhookFailedError extends SloError {
  static override readonly code = 'BULWARK_SLO_WEBHOOK_FAILED';
  readonly url: string;
  readonly status: number | undefined;
  /** From the answer's `Retry-After`, read by the retry policy. */
  readonly retryAfterMs: number | undefined;
  constructor(url: string, status: number | undefined, reason: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super('BULWARK_SLO_WEBHOOK_FAILED', `webhook ${url}: ${reason}`, { cause: options.cause });
    this.url = url;
    this.status = status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A webhook answered a status that another attempt would not change (400, 401, 404, ...). */
export class WebhookRejectedError extends SloError {
  static override readonly code = 'BULWARK_SLO_WEBHOOK_REJECTED';
  readonly url: string;
  readonly status: number;
  constructor(url: string, status: number) {
    super('BULWARK_SLO_WEBHOOK_REJECTED', `webhook ${url}: answered ${status}`);
    this.url = url;
    this.status = status;
  }
}

/** True for any SLO error, from any installed copy of the package. */
export function isSloError(value: unknown): value is SloError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kSloBrand] === true;
}

/** True for an {@link SloSpecError} from any installed copy. */
export function isSloSpecError(value: unknown): value is SloSpecError {
  return isSloError(value) && value.code === 'BULWARK_SLO_SPEC_INVALID';
}

/** True for an {@link SloNotFoundError} from any installed copy. */
export function isSloNotFoundError(value: unknown): value is SloNotFoundError {
  return isSloError(value) && value.code === 'BULWARK_SLO_NOT_FOUND';
}

/** True for an {@link InvalidRecordError} from any installed copy. */
export function isInvalidRecordError(value: unknown): value is InvalidRecordError {
  return isSloError(value) && value.code === 'BULWARK_SLO_INVALID_RECORD';
}

/** True for a webhook delivery error of either kind, from any installed copy. */
export function isWebhookError(value: unknown): value is WebhookFailedError | WebhookRejectedError {
  return isSloError(value) && (value.code === 'BULWARK_SLO_WEBHOOK_FAILED' || value.code === 'BULWARK_SLO_WEBHOOK_REJECTED');
}
