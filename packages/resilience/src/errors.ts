/**
 * The error family of `@bulwark/resilience`.
 *
 * Every error carries a stable string `code` and a `retryable` classification
 * that retries, hedges and saga steps all read. Identity survives two installed
 * copies of this package: `instanceof` is decided by a `Symbol.for` brand and
 * the code, not by the prototype chain.
 *
 * @example
 * ```ts
 * try { await policy.execute(call) }
 * catch (err) { if (err instanceof CircuitOpenError) return cached() }
 * ```
 */

const kBrand = Symbol.for('bulwark.error');

/** Stable codes, their meaning and the HTTP status a service kit maps them to. */
export const errorCodes = {
  BULWARK_INVALID_OPTION: { status: 500, retryable: false, description: 'A policy was constructed with an invalid option.' },
  BULWARK_TIMEOUT: { status: 504, retryable: true, description: 'One attempt ran past its own timeout.' },
  BULWARK_DEADLINE_EXCEEDED: { status: 504, retryable: false, description: 'The whole call ran out of its time budget.' },
  BULWARK_CIRCUIT_OPEN: { status: 503, retryable: false, description: 'A circuit breaker is open (or isolated) and refused the call.' },
  BULWARK_BULKHEAD_REJECTED: { status: 503, retryable: false, description: 'A bulkhead was full, or the call waited too long in its queue.' },
  BULWARK_RATE_LIMITED: { status: 429, retryable: true, description: 'A rate limiter refused the call; `retryAfterMs` says when to come back.' },
  BULWARK_HEDGE_LOST: { status: 499, retryable: false, description: 'Abort reason given to a hedged attempt that lost the race.' },
} as const satisfies Record<string, { status: number; retryable: boolean; description: string }>;

export type ErrorCode = keyof typeof errorCodes;

export interface BulwarkErrorOptions {
  cause?: unknown;
  /** Skip the stack trace: used by control-flow errors, where it costs more than the call. */
  stackless?: boolean;
}

/** Base class of every Bulwark error. */
export class BulwarkError extends Error {
  /** Code of the class, read by `instanceof` checks. */
  static readonly code: string | undefined = undefined;

  readonly code: string;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: BulwarkErrorOptions = {}) {
    if (options.stackless === true) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      super(message, options.cause === undefined ? undefined : { cause: options.cause });
      Error.stackTraceLimit = limit;
    } else {
      super(message, options.cause === undefined ? undefined : { cause: options.cause });
    }
    this.name = new.target.name;
    this.code = code;
    this.retryable = errorCodes[code].retryable;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isBulwarkError);
  }
}

/**
 * `instanceof` for an error class of a branded family, shared by every
 * package's error classes: a class with a `code` of its own matches any
 * error of the family (`isFamily`, which reads a `Symbol.for` brand, so it
 * holds across duplicate installs) with that code, the family's base class
 * (`code` undefined) matches every member, and a user's own subclass (no
 * `code` of its own) is judged by its prototype chain, as usual.
 *
 * @example
 * ```ts
 * static override [Symbol.hasInstance](value: unknown): boolean {
 *   return isInstanceOfErrorClass(this, value, isMyPackageError);
 * }
 * ```
 */
export function isInstanceOfErrorClass(cls: (abstract new (...args: never[]) => unknown) & { readonly code?: string | undefined }, value: unknown, isFamily: (value: unknown) => value is { readonly code: string }): boolean {
  if (!Object.hasOwn(cls, 'code')) return Function.prototype[Symbol.hasInstance].call(cls, value);
  if (!isFamily(value)) return false;
  return cls.code === undefined || value.code === cls.code;
}

// The brand lives on the prototype: every installed copy sets the same `Symbol.for` key.
Object.defineProperty(BulwarkError.prototype, kBrand, { value: true });

/**
 * Builds an error of class `type` without running the `Error` constructor,
 * for rejections on a fast-fail path: a V8 `Error` costs 300 ns even without
 * a stack trace, which is more than the call it refuses. The result passes
 * `instanceof` for its class and for `Error`, and its `stack` is its message.
 */
export function fastError<E extends BulwarkError>(type: abstract new (...args: never[]) => E, code: ErrorCode, message: string, fields: Omit<E, keyof BulwarkError>): E {
  const error = Object.create(type.prototype as object) as Record<string, unknown>;
  error.name = type.name;
  error.message = message;
  error.code = code;
  error.retryable = errorCodes[code].retryable;
  error.stack = `${type.name}: ${message}`;
  Object.assign(error, fields);
  return error as unknown as E;
}

/** True for any Bulwark error, from any installed copy of any Bulwark package. */
export function isBulwarkError(value: unknown): value is BulwarkError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
}

/** A policy was given an option it cannot work with. Thrown at construction. */
export class InvalidOptionError extends BulwarkError {
  static override readonly code = 'BULWARK_INVALID_OPTION';
  readonly option: string;
  readonly value: unknown;
  constructor(policy: string, option: string, value: unknown, expected: string) {
    super('BULWARK_INVALID_OPTION', `${policy}: option "${option}" must be ${expected}, got ${describe(value)}`);
    this.option = option;
    this.value = value;
  }
}

/** One attempt ran past its timeout. Retryable: the next attempt may be faster. */
export class TimeoutError extends BulwarkError {
  static override readonly code = 'BULWARK_TIMEOUT';
  readonly timeoutMs: number;
  constructor(timeoutMs: number, policy?: string) {
    super('BULWARK_TIMEOUT', `${policy ?? 'timeout'}: attempt timed out after ${timeoutMs} ms`, { stackless: true });
    this.timeoutMs = timeoutMs;
  }
}

/** The call's total budget is spent. Not retryable: there is no time left to retry in. */
export class DeadlineExceededError extends BulwarkError {
  static override readonly code = 'BULWARK_DEADLINE_EXCEEDED';
  constructor(policy?: string) {
    super('BULWARK_DEADLINE_EXCEEDED', `${policy ?? 'deadline'}: deadline exceeded`, { stackless: true });
  }
}

/** A circuit breaker refused the call without running it. */
export class CircuitOpenError extends BulwarkError {
  static override readonly code = 'BULWARK_CIRCUIT_OPEN';
  readonly breaker: string;
  /** True when an operator isolated the breaker by hand. */
  readonly isolated: boolean;
  /** Milliseconds until the breaker lets a probe through, when known. */
  readonly retryAfterMs: number | undefined;
  constructor(breaker: string, isolated: boolean, retryAfterMs: number | undefined) {
    super('BULWARK_CIRCUIT_OPEN', `circuit breaker "${breaker}" is ${isolated ? 'isolated' : 'open'}`, { stackless: true });
    this.breaker = breaker;
    this.isolated = isolated;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A bulkhead had no slot and no queue room, or the call waited in its queue past `maxWaitMs`. */
export class BulkheadRejectedError extends BulwarkError {
  static override readonly code = 'BULWARK_BULKHEAD_REJECTED';
  readonly bulkhead: string;
  readonly reason: 'full' | 'queue-timeout';
  constructor(bulkhead: string, reason: 'full' | 'queue-timeout') {
    super('BULWARK_BULKHEAD_REJECTED', `bulkhead "${bulkhead}" rejected the call (${reason})`, { stackless: true });
    this.bulkhead = bulkhead;
    this.reason = reason;
  }
}

/** A rate limiter refused the call. */
export class RateLimitedError extends BulwarkError {
  static override readonly code = 'BULWARK_RATE_LIMITED';
  readonly limiter: string;
  readonly retryAfterMs: number;
  constructor(limiter: string, retryAfterMs: number) {
    super('BULWARK_RATE_LIMITED', `rate limiter "${limiter}" refused the call; retry after ${retryAfterMs} ms`, { stackless: true });
    this.limiter = limiter;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The abort reason a hedged attempt receives when another attempt won. */
export class HedgeLostError extends BulwarkError {
  static override readonly code = 'BULWARK_HEDGE_LOST';
  constructor() {
    super('BULWARK_HEDGE_LOST', 'another hedged attempt finished first', { stackless: true });
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'symbol' || typeof value === 'bigint' || value === undefined || value === null) return String(value);
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
