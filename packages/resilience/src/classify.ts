/**
 * How policies read an error: is it transient, is it the caller's fault, does
 * it say when to come back. These are duck-typed on purpose, so errors from
 * undici, node:net, fetch, or a service's own classes work without adapters.
 */
import { isBulwarkError } from './errors.js';

const transientNetworkCodes = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH',
  'EHOSTUNREACH', 'ENOTCONN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);

const transientStatuses = new Set([429, 502, 503, 504]);

/** The HTTP status an error carries (`status`, `statusCode`), if any. */
export function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { status?: unknown; statusCode?: unknown };
  const status = typeof e.status === 'number' ? e.status : e.statusCode;
  return typeof status === 'number' && Number.isInteger(status) ? status : undefined;
}

/**
 * The default `retryOn` predicate: transient failures only.
 *
 * - an explicit boolean `retryable` on the error wins (Bulwark errors, or any
 *   error that sets it, like Temporal's `nonRetryable` turned around);
 * - network errors and undici socket/timeouts are transient;
 * - HTTP 429, 502, 503 and 504 are transient; every other 4xx and 5xx is not.
 */
export function isTransient(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { retryable?: unknown; code?: unknown; name?: unknown };
  if (typeof e.retryable === 'boolean') return e.retryable;
  const status = statusOf(error);
  if (status !== undefined) return transientStatuses.has(status);
  if (typeof e.code === 'string' && transientNetworkCodes.has(e.code)) return true;
  return e.name === 'TimeoutError';
}

/**
 * The default failure predicate of a circuit breaker: anything that says the
 * dependency is unwell. A 4xx other than 429 is the caller's fault and does
 * not count; neither does a rejection by another policy (its own breaker, a
 * bulkhead or a rate limiter said no, the dependency never saw the call).
 */
export function isDependencyFailure(error: unknown): boolean {
  if (isBulwarkError(error)) {
    return error.code === 'BULWARK_TIMEOUT' || error.code === 'BULWARK_DEADLINE_EXCEEDED';
  }
  const status = statusOf(error);
  if (status !== undefined) return status >= 500 || status === 429 || status === 408;
  return true;
}

/**
 * Milliseconds the error asks the caller to wait, from a `retryAfterMs`
 * property or a `Retry-After` header (seconds or an HTTP date).
 */
export function retryAfterMsOf(error: unknown, nowEpochMs: number = Date.now()): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { retryAfterMs?: unknown; headers?: unknown };
  if (typeof e.retryAfterMs === 'number' && e.retryAfterMs >= 0) return e.retryAfterMs;
  const header = readHeader(e.headers, 'retry-after');
  return header === undefined ? undefined : parseRetryAfter(header, nowEpochMs);
}

/** Parses a `Retry-After` value (delta-seconds or HTTP-date) into milliseconds from now. */
export function parseRetryAfter(value: string, nowEpochMs: number = Date.now()): number | undefined {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowEpochMs);
}

function readHeader(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(n: string): unknown }).get(name);
    return typeof v === 'string' ? v : undefined;
  }
  const v = (headers as Record<string, unknown>)[name];
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}
