/** Errors of `@bulwark/messaging`, with stable codes; check them with the guards, which hold across installs. */

/** A message's payload failed its type's schema at `outbox.add`; nothing was written. */
export class InvalidMessageError extends Error {
  readonly code = 'BULWARK_INVALID_MESSAGE';
  readonly retryable = false;
  constructor(
    readonly type: string,
    readonly version: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`message ${type} v${version} is invalid: ${reason}`, options);
    this.name = 'InvalidMessageError';
  }
}

/** An argument to a messaging API is unusable (an empty topic, a bad option); names it. */
export class MessagingConfigError extends Error {
  readonly code = 'BULWARK_MESSAGING_CONFIG';
  readonly retryable = false;
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`messaging "${key}": ${message}`);
    this.name = 'MessagingConfigError';
  }
}

export function isInvalidMessageError(error: unknown): error is InvalidMessageError {
  return hasCode(error, 'BULWARK_INVALID_MESSAGE');
}

export function isMessagingConfigError(error: unknown): error is MessagingConfigError {
  return hasCode(error, 'BULWARK_MESSAGING_CONFIG');
}

function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
