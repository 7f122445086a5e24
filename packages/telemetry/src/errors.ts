/**
 * The error family of `@bulwark/telemetry`.
 *
 * Every error carries a stable string `code` and a `retryable` flag, like the
 * rest of Bulwark. Identity survives two installed copies of this package:
 * `instanceof` and the guards read a `Symbol.for` brand and the code, not the
 * prototype chain. The shared `bulwark.error` brand is set too, so
 * `isBulwarkError` from `@bulwark/resilience` recognises these errors.
 *
 * Telemetry throws only at set-up time or on an operator's bad input (an
 * unknown log level on the admin route); recording a span, a log line or a
 * metric never throws into the code it observes.
 */
import { isInstanceOfErrorClass } from '@bulwark/resilience';

const kBulwark = Symbol.for('bulwark.error');
const kTelemetry = Symbol.for('bulwark.telemetry.error');

/** Stable codes, their meaning and the HTTP status an admin route answers with. */
export const telemetryErrorCodes = {
  BULWARK_TELEMETRY_INVALID_OPTION: { status: 500, retryable: false, description: 'A telemetry component was set up with an invalid option; `option` names it.' },
  BULWARK_TELEMETRY_INVALID_LOG_LEVEL: { status: 400, retryable: false, description: 'A log level that pino does not know was asked for.' },
  BULWARK_TELEMETRY_UNKNOWN_LOG_MODULE: { status: 404, retryable: false, description: 'A log level change named a module logger that does not exist.' },
  BULWARK_TELEMETRY_UNKNOWN_FUNNEL_STEP: { status: 500, retryable: false, description: 'A funnel was told about a step it was not declared with.' },
} as const satisfies Record<string, { status: number; retryable: boolean; description: string }>;

export type TelemetryErrorCode = keyof typeof telemetryErrorCodes;

/** Base class of every telemetry error. */
export class TelemetryError extends Error {
  /** Code of the class, read by `instanceof` checks. */
  static readonly code: string | undefined = undefined;

  readonly code: TelemetryErrorCode;
  readonly retryable: boolean;
  /** The HTTP status an admin route answers with. */
  readonly status: number;

  constructor(code: TelemetryErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = telemetryErrorCodes[code].retryable;
    this.status = telemetryErrorCodes[code].status;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isTelemetryError);
  }
}

Object.defineProperty(TelemetryError.prototype, kBulwark, { value: true });
Object.defineProperty(TelemetryError.prototype, kTelemetry, { value: true });

/** An option given to `setupTelemetry`, `createLogger`, `Metrics` or a plugin is unusable. */
export class InvalidTelemetryOptionError extends TelemetryError {
  static override readonly code = 'BULWARK_TELEMETRY_INVALID_OPTION';
  readonly option: string;
  readonly value: unknown;
  constructor(component: string, option: string, value: unknown, expected: string) {
    super('BULWARK_TELEMETRY_INVALID_OPTION', `${component}: option "${option}" must be ${expected}, got ${describe(value)}`);
    this.option = option;
    this.value = value;
  }
}

/** A log level outside pino's levels (`trace` ... `fatal`, `silent`). */
export class InvalidLogLevelError extends TelemetryError {
  static override readonly code = 'BULWARK_TELEMETRY_INVALID_LOG_LEVEL';
  readonly level: unknown;
  constructor(level: unknown, allowed: readonly string[]) {
    super('BULWARK_TELEMETRY_INVALID_LOG_LEVEL', `log level must be one of ${allowed.join(', ')}, got ${describe(level)}`);
    this.level = level;
  }
}

/** A level change named a module logger that was never created. */
export class UnknownLogModuleError extends TelemetryError {
  static override readonly code = 'BULWARK_TELEMETRY_UNKNOWN_LOG_MODULE';
  readonly module: string;
  constructor(module: string) {
    super('BULWARK_TELEMETRY_UNKNOWN_LOG_MODULE', `no module logger named "${module}"`);
    this.module = module;
  }
}

/** A funnel was told about a step outside the list it was declared with. */
export class UnknownFunnelStepError extends TelemetryError {
  static override readonly code = 'BULWARK_TELEMETRY_UNKNOWN_FUNNEL_STEP';
  readonly funnel: string;
  readonly step: string;
  constructor(funnel: string, step: string, steps: readonly string[]) {
    super('BULWARK_TELEMETRY_UNKNOWN_FUNNEL_STEP', `funnel "${funnel}" has no step "${step}" (steps: ${steps.join(', ')})`);
    this.funnel = funnel;
    this.step = step;
  }
}

/** True for any telemetry error, from any installed copy of this package. */
export function isTelemetryError(value: unknown): value is TelemetryError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kTelemetry] === true;
}

/** True for an `InvalidTelemetryOptionError` from any installed copy. */
export function isInvalidTelemetryOptionError(value: unknown): value is InvalidTelemetryOptionError {
  return isTelemetryError(value) && value.code === 'BULWARK_TELEMETRY_INVALID_OPTION';
}

/** True for an `InvalidLogLevelError` from any installed copy. */
export function isInvalidLogLevelError(value: unknown): value is InvalidLogLevelError {
  return isTelemetryError(value) && value.code === 'BULWARK_TELEMETRY_INVALID_LOG_LEVEL';
}

/** True for an `UnknownLogModuleError` from any installed copy. */
export function isUnknownLogModuleError(value: unknown): value is UnknownLogModuleError {
  return isTelemetryError(value) && value.code === 'BULWARK_TELEMETRY_UNKNOWN_LOG_MODULE';
}

/** True for an `UnknownFunnelStepError` from any installed copy. */
export function isUnknownFunnelStepError(value: unknown): value is UnknownFunnelStepError {
  return isTelemetryError(value) && value.code === 'BULWARK_TELEMETRY_UNKNOWN_FUNNEL_STEP';
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

/** Validators shared by the components' constructors. */
export function requireRatio(component: string, option: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new InvalidTelemetryOptionError(component, option, value, 'a number between 0 and 1');
  return value;
}

export function requireName(component: string, option: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new InvalidTelemetryOptionError(component, option, value, 'a non-empty string');
  return value;
}

export function requirePositiveInt(component: string, option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new InvalidTelemetryOptionError(component, option, value, 'a positive integer');
  return value;
}
