/**
 * The error family of `@bulwark/http/client`.
 *
 * Every error has a stable `code` and a `retryable` flag, which the retry
 * policy of `@bulwark/resilience` reads first (`isTransient`), so the client's
 * own classification decides what is retried: 429/502/503/504 and network
 * failures are, other statuses and a too-large response are not.
 * `dependencyFailure` says whether the error counts against the dependency's
 * circuit breaker (5xx, 408, 429, network: yes; other 4xx: no).
 *
 * Identity survives two installed copies of this package: `instanceof` is
 * decided by a `Symbol.for` brand and the code; `isHttpClientError` reads the brand.
 */
import { isInstanceOfErrorClass, parseRetryAfter } from '@bulwark/resilience';

const kBrand = Symbol.for('bulwark.http.client.error');

/** Stable codes, whether they are retryable, and what they mean. */
export const clientErrorCodes = {
  BULWARK_HTTP_STATUS: { retryable: false, description: 'The server answered with a non-2xx status; `status` and `problem` say more. Retryable for 429, 502, 503 and 504.' },
  BULWARK_HTTP_NETWORK: { retryable: true, description: 'The request failed below HTTP (refused, reset, DNS, socket timeout). Retryable unless the request was cancelled.' },
  BULWARK_HTTP_RESPONSE_TOO_LARGE: { retryable: false, description: 'The response body exceeded `maxResponseBytes`; reading stopped at the cap.' },
  BULWARK_HTTP_INVALID_RESPONSE: { retryable: false, description: 'A body the caller asked to parse as JSON was not JSON.' },
  BULWARK_HTTP_INVALID_OPTION: { retryable: false, description: 'The client or a call was given an unusable option.' },
} as const satisfies Record<string, { retryable: boolean; description: string }>;

export type ClientErrorCode = keyof typeof clientErrorCodes;

/** An RFC 9457 problem document as a server sent it (fields other than these are kept as they came). */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Base class of every client error. */
export class HttpClientError extends Error {
  /** Code of the class, read by `instanceof` checks. */
  static readonly code: string | undefined = undefined;

  readonly code: ClientErrorCode;
  readonly retryable: boolean;
  /** Whether this failure counts against the dependency's circuit breaker. */
  readonly dependencyFailure: boolean;
  /** The client (dependency) name. */
  readonly client: string;

  constructor(code: ClientErrorCode, client: string, message: string, options: { retryable?: boolean; dependencyFailure?: boolean; cause?: unknown } = {}) {
    super(`${client}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.client = client;
    this.retryable = options.retryable ?? clientErrorCodes[code].retryable;
    this.dependencyFailure = options.dependencyFailure ?? false;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isHttpClientError);
  }
}

Object.defineProperty(HttpClientError.prototype, kBrand, { value: true });

/** True for any client error, from any installed copy of this package. */
export function isHttpClientError(value: unknown): value is HttpClientError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
}

const retryableStatuses = new Set([429, 502, 503, 504]);

/**
 * The server answered with a status outside 2xx. Carries the status, the
 * response headers, the parsed problem details when the body was
 * `application/problem+json`, and `retryAfterMs` from a `Retry-After` header
 * (which the retry policy honours).
 */
export class HttpStatusError extends HttpClientError {
  static override readonly code = 'BULWARK_HTTP_STATUS';
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly problem: ProblemDetails | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(client: string, method: string, path: string, status: number, headers: Record<string, string | string[] | undefined>, problem: ProblemDetails | undefined) {
    super('BULWARK_HTTP_STATUS', client, `${method} ${path} answered ${status}${problem?.title === undefined ? '' : ` (${problem.title})`}`, {
      retryable: retryableStatuses.has(status),
      dependencyFailure: status >= 500 || status === 429 || status === 408,
    });
    this.status = status;
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.problem = problem;
    const retryAfter = headers['retry-after'];
    const value = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
    this.retryAfterMs = value === undefined ? undefined : parseRetryAfter(value);
  }
}

/**
 * The request failed below HTTP. `reason` is the underlying code
 * (`ECONNREFUSED`, `UND_ERR_SOCKET`, ...); the original error is the `cause`.
 */
export class HttpNetworkError extends HttpClientError {
  static override readonly code = 'BULWARK_HTTP_NETWORK';
  readonly reason: string;
  constructor(client: string, method: string, path: string, reason: string, cause: unknown, retryable: boolean) {
    super('BULWARK_HTTP_NETWORK', client, `${method} ${path} failed (${reason})`, { cause, retryable, dependencyFailure: retryable });
    this.reason = reason;
  }
}

/** The response body passed `maxResponseBytes`. The connection was aborted at the cap; nothing past it was buffered. */
export class ResponseTooLargeError extends HttpClientError {
  static override readonly code = 'BULWARK_HTTP_RESPONSE_TOO_LARGE';
  readonly limit: number;
  readonly status: number;
  constructor(client: string, method: string, path: string, status: number, limit: number) {
    super('BULWARK_HTTP_RESPONSE_TOO_LARGE', client, `${method} ${path}: response body larger than ${limit} bytes`);
    this.limit = limit;
    this.status = status;
  }
}

/** A body asked for as JSON did not parse. */
export class InvalidResponseError extends HttpClientError {
  static override readonly code = 'BULWARK_HTTP_INVALID_RESPONSE';
  readonly status: number;
  constructor(client: string, method: string, path: string, status: number, cause: unknown) {
    super('BULWARK_HTTP_INVALID_RESPONSE', client, `${method} ${path}: response body is not valid JSON`, { cause });
    this.status = status;
  }
}

/** The client or a call was configured with an unusable option. */
export class ClientOptionError extends HttpClientError {
  static override readonly code = 'BULWARK_HTTP_INVALID_OPTION';
  readonly option: string;
  constructor(client: string, option: string, expected: string) {
    super('BULWARK_HTTP_INVALID_OPTION', client, `option "${option}" must be ${expected}`);
    this.option = option;
  }
}
