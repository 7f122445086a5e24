/**
 * What can go wrong between the gateway and an upstream, and how the retry
 * and breaker policies judge it.
 */
import type { Attempt } from './attempt.js';
import { RequestBodyAbortedError } from './h1/pool.js';

/** The upstream had no available instance (all ejected or unhealthy, or none discovered). */
export class NoInstanceError extends Error {
  readonly code = 'BULWARK_GATEWAY_NO_INSTANCE';
  readonly retryable = false;
  constructor(readonly upstream: string) {
    super(`upstream "${upstream}" has no available instance`);
  }
}

/** The exchange's deadline passed before a response head arrived. */
export class GatewayDeadlineError extends Error {
  readonly code = 'BULWARK_GATEWAY_DEADLINE';
  readonly retryable = false;
}

/** A 5xx response head, held while the retry policy decides. */
export class UpstreamStatusError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly status: number,
    readonly attempt: Attempt,
  ) {
    super(`upstream answered ${status}`);
    this.retryable = status === 502 || status === 503 || status === 504;
  }
}

/** The upstream's response is larger than the route allows. */
export class ResponseTooLargeError extends Error {
  readonly code = 'BULWARK_GATEWAY_RESPONSE_TOO_LARGE';
  readonly retryable = false;
}

/** The client went away; nothing to answer. */
export class ClientGoneError extends Error {
  readonly code = 'BULWARK_GATEWAY_CLIENT_GONE';
  readonly retryable = false;
}

export const CLIENT_GONE = new ClientGoneError('client closed the connection');

/** Failures that are the client's doing, not the instance's. */
export function isClientSide(error: unknown): boolean {
  return error instanceof ClientGoneError || error instanceof RequestBodyAbortedError;
}

/** Breaker failure predicate: 5xx and transport failures count; no instance, client aborts and deadlines spent before trying do not. */
export function isUpstreamFailure(error: unknown): boolean {
  if (error instanceof UpstreamStatusError) return true;
  if (error instanceof NoInstanceError || error instanceof GatewayDeadlineError || error instanceof ResponseTooLargeError || isClientSide(error)) return false;
  return true;
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Retry predicate: 502/503/504 heads and transient transport failures (refused,
 * reset, a connection closed before any of the response arrived). Errors that
 * say whether they are `retryable` are taken at their word.
 */
export function isRetryableUpstreamFailure(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { retryable?: unknown; code?: unknown };
  if (typeof e.retryable === 'boolean') return e.retryable;
  return typeof e.code === 'string' && TRANSIENT_CODES.has(e.code);
}
