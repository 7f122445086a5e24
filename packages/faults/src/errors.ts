/**
 * The error family of `@bulwark/faults`.
 *
 * Every error has a stable `code` and a `retryable` flag (none of these is
 * retryable: they are mistakes in a rule set, not passing conditions).
 * Identity survives two installed copies of this package: `instanceof` is
 * decided by a `Symbol.for` brand and the code; `isFaultError` reads the brand.
 *
 * The faults themselves are not errors of this family: an injected reset is
 * an error shaped like undici's socket error (`UND_ERR_SOCKET`, cause
 * `ECONNRESET`) so that callers classify it as the network failure it
 * imitates; `injectedFaultOf(error)` tells it apart.
 */
import { isInstanceOfErrorClass } from '@bulwark/resilience';

const kBrand = Symbol.for('bulwark.faults.error');
const kInjected = Symbol.for('bulwark.faults.injected');

/** Stable codes, whether they are retryable, and what they mean. */
export const faultErrorCodes = {
  BULWARK_FAULT_INVALID_RULE: { retryable: false, status: 400, description: 'A fault rule, rule set or rules file is invalid; `field` names the offending field (and `file` the file).' },
  BULWARK_FAULT_UNKNOWN_RULE: { retryable: false, status: 404, description: 'No fault rule has this id.' },
  BULWARK_FAULT_INVALID_OPTION: { retryable: false, status: 500, description: 'An injector, plugin or interceptor was constructed with an unusable option.' },
} as const satisfies Record<string, { retryable: boolean; status: number; description: string }>;

export type FaultErrorCode = keyof typeof faultErrorCodes;

/** Base of the problem types the fault plugins answer with. */
export const FAULT_PROBLEM_BASE = 'https://bulwark.dev/problems/faults/';

/** Problem types: an injected error answer, an invalid rule, an unknown rule id. */
export const faultProblemTypes = {
  injected: `${FAULT_PROBLEM_BASE}injected`,
  invalidRule: `${FAULT_PROBLEM_BASE}invalid-rule`,
  unknownRule: `${FAULT_PROBLEM_BASE}unknown-rule`,
} as const;

/** Base class of every error of this package. */
export class FaultError extends Error {
  /** Code of the class, read by `instanceof` checks. */
  static readonly code: string | undefined = undefined;

  readonly code: FaultErrorCode;
  readonly retryable: boolean;

  constructor(code: FaultErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = faultErrorCodes[code].retryable;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isFaultError);
  }
}

Object.defineProperty(FaultError.prototype, kBrand, { value: true });

/** True for any error of this package, from any installed copy of it. */
export function isFaultError(value: unknown): value is FaultError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
}

/**
 * A rule (or a rule set, or a rules file) is invalid. `field` is the path of
 * the offending field from the top of what was validated — `latency.medianMs`
 * for one rule, `rules[2].latency.medianMs` for a set — and `file` the file it
 * came from. Renders as a 400 problem (`toProblem()`), which `@bulwark/http`'s
 * kit and the admin routes send as it is.
 */
export class FaultConfigError extends FaultError {
  static override readonly code = 'BULWARK_FAULT_INVALID_RULE';
  /** Path of the offending field (`rules[2].latency.medianMs`); `(root)` for the whole document. */
  readonly field: string;
  /** Why it is refused (`must be a number above 0, got -1`). */
  readonly reason: string;
  /** The file the rules came from, when they came from one. */
  readonly file: string | undefined;

  constructor(field: string, reason: string, options: { file?: string; cause?: unknown } = {}) {
    super('BULWARK_FAULT_INVALID_RULE', `${options.file === undefined ? '' : `${options.file}: `}${field} ${reason}`, options);
    this.field = field;
    this.reason = reason;
    this.file = options.file;
  }

  /** The same error, its field under `prefix` (`rules[2]`) and/or from `file`. */
  within(prefix: string | undefined, file?: string): FaultConfigError {
    const field = prefix === undefined || prefix === '' ? this.field : this.field === '(root)' ? prefix : `${prefix}.${this.field}`;
    const from = file ?? this.file;
    return new FaultConfigError(field, this.reason, from === undefined ? { cause: this.cause } : { file: from, cause: this.cause });
  }

  toProblem(): { type: string; title: string; status: number; detail: string; code: string; field: string; 'invalid-params': { in: string; name: string; reason: string }[] } {
    return {
      type: faultProblemTypes.invalidRule,
      title: 'Invalid fault rule',
      status: 400,
      detail: this.message,
      code: this.code,
      field: this.field,
      'invalid-params': [{ in: 'body', name: this.field, reason: this.reason }],
    };
  }
}

/** No rule has this id (removing or reading one). */
export class UnknownFaultRuleError extends FaultError {
  static override readonly code = 'BULWARK_FAULT_UNKNOWN_RULE';
  readonly id: string;
  constructor(id: string) {
    super('BULWARK_FAULT_UNKNOWN_RULE', `no fault rule "${id}"`);
    this.id = id;
  }

  toProblem(): { type: string; title: string; status: number; detail: string; code: string; id: string } {
    return { type: faultProblemTypes.unknownRule, title: 'Unknown fault rule', status: 404, detail: this.message, code: this.code, id: this.id };
  }
}

/** An injector, plugin or interceptor was given an option it cannot work with. Thrown at construction. */
export class FaultOptionError extends FaultError {
  static override readonly code = 'BULWARK_FAULT_INVALID_OPTION';
  readonly option: string;
  constructor(component: string, option: string, expected: string, got: unknown) {
    super('BULWARK_FAULT_INVALID_OPTION', `${component}: option "${option}" must be ${expected}, got ${describe(got)}`);
    this.option = option;
  }
}

/** What an injected failure carries: the rule that caused it. */
export interface InjectedFault {
  rule: string;
  kind: string;
}

/** Marks `error` as caused by fault rule `rule` (read back by `injectedFaultOf`). */
export function markInjected<E extends object>(error: E, fault: InjectedFault): E {
  Object.defineProperty(error, kInjected, { value: fault, enumerable: false });
  return error;
}

/**
 * The rule behind an injected failure — an outbound reset or a hang given up
 * — or `undefined` for a real one. Follows `cause` chains, so it also finds
 * the fault inside a client's own error (`HttpNetworkError`).
 */
export function injectedFaultOf(error: unknown): InjectedFault | undefined {
  for (let e: unknown = error, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const fault = (e as Record<symbol, unknown>)[kInjected];
    if (fault !== undefined) return fault as InjectedFault;
  }
  return undefined;
}

/** A value, short, for an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return value.toString();
  if (Array.isArray(value)) return 'an array';
  return 'an object';
}
