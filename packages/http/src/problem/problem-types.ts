/**
 * The problem types the service kit answers with, by slug. Each one has a
 * stable `type` URI (`https://bulwark.dev/problems/<slug>`), its HTTP status,
 * a stable error `code`, whether retrying the same request may succeed, and
 * what it means. The package README lists the same table; a test keeps the
 * two in step.
 *
 * @example
 * ```ts
 * import { problemTypes, problemTypeUri } from '@bulwark/http';
 * problemTypes['idempotency-in-progress'].status; // 409
 * problemTypeUri('not-found');                    // 'https://bulwark.dev/problems/not-found'
 * ```
 */

/** Base of every kit problem `type` URI. */
export const PROBLEM_BASE_URI = 'https://bulwark.dev/problems/';

/** One registered problem type. */
export interface ProblemType {
  readonly status: number;
  readonly title: string;
  readonly code: string;
  readonly retryable: boolean;
  readonly description: string;
}

export const problemTypes = {
  'bad-request': { status: 400, title: 'Bad request', code: 'BULWARK_HTTP_BAD_REQUEST', retryable: false, description: 'The request was refused for a reason no more specific type names.' },
  validation: { status: 400, title: 'Invalid request', code: 'BULWARK_HTTP_VALIDATION', retryable: false, description: 'Parameters, query, headers or body failed the route schema; `invalid-params` lists each one (`in`, `name`, `reason`).' },
  'malformed-json': { status: 400, title: 'Malformed JSON body', code: 'BULWARK_HTTP_MALFORMED_JSON', retryable: false, description: 'The body is declared JSON but does not parse, is empty, or carries a prototype-poisoning key.' },
  'invalid-header': { status: 400, title: 'Invalid header', code: 'BULWARK_HTTP_INVALID_HEADER', retryable: false, description: 'A header the kit reads (`x-request-id`, `traceparent`, `tracestate`, `idempotency-key`) holds control characters or non-ASCII bytes: a header-injection attempt. `header` names it.' },
  'malformed-request': { status: 400, title: 'Malformed HTTP request', code: 'BULWARK_HTTP_MALFORMED_REQUEST', retryable: false, description: "The HTTP parser refused the request (bad request line or header syntax); answered on the socket, the connection is closed." },
  'request-timeout': { status: 408, title: 'Request timeout', code: 'BULWARK_HTTP_REQUEST_TIMEOUT', retryable: true, description: 'The client took longer than the server allows to send its request; answered on the socket, the connection is closed.' },
  'header-too-large': { status: 431, title: 'Request headers too large', code: 'BULWARK_HTTP_HEADER_TOO_LARGE', retryable: false, description: "The request's headers exceed the server's limit." },
  'payload-too-large': { status: 413, title: 'Request body too large', code: 'BULWARK_HTTP_PAYLOAD_TOO_LARGE', retryable: false, description: 'The body is larger than the route or server `bodyLimit`; `limit` gives it in bytes.' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type', code: 'BULWARK_HTTP_UNSUPPORTED_MEDIA_TYPE', retryable: false, description: 'The route has no parser for the request `content-type`.' },
  'not-found': { status: 404, title: 'Not found', code: 'BULWARK_HTTP_NOT_FOUND', retryable: false, description: 'No route matches the method and path.' },
  internal: { status: 500, title: 'Internal server error', code: 'BULWARK_HTTP_INTERNAL', retryable: true, description: 'An unexpected error. Nothing about it is disclosed; quote `requestId` when reporting it.' },
  'not-ready': { status: 503, title: 'Not ready', code: 'BULWARK_HTTP_NOT_READY', retryable: true, description: 'Readiness: a dependency check failed or timed out; `checks` names each failed check and why.' },
  'shutting-down': { status: 503, title: 'Shutting down', code: 'BULWARK_HTTP_SHUTTING_DOWN', retryable: true, description: 'The instance is draining after SIGTERM/SIGINT and takes no new requests; retry on another instance.' },
  'rate-limited': { status: 429, title: 'Too many requests', code: 'BULWARK_HTTP_RATE_LIMITED', retryable: true, description: 'A rate limit refused the request; `Retry-After` says when to come back.' },
  'rate-limit-unavailable': { status: 503, title: 'Rate limit unavailable', code: 'BULWARK_HTTP_RATE_LIMIT_UNAVAILABLE', retryable: true, description: 'The rate-limit store failed and the route is configured to fail closed.' },
  'idempotency-key-invalid': { status: 400, title: 'Invalid Idempotency-Key', code: 'BULWARK_HTTP_IDEMPOTENCY_KEY_INVALID', retryable: false, description: 'The `Idempotency-Key` header is not 1 to 255 visible ASCII characters.' },
  'idempotency-key-missing': { status: 400, title: 'Idempotency-Key required', code: 'BULWARK_HTTP_IDEMPOTENCY_KEY_MISSING', retryable: false, description: 'The route requires an `Idempotency-Key` header and the request has none.' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency-Key reused', code: 'BULWARK_HTTP_IDEMPOTENCY_KEY_REUSED', retryable: false, description: 'The key was already used with a different request (method, route, parameters or body) by the same caller.' },
  'idempotency-in-progress': { status: 409, title: 'Request in progress', code: 'BULWARK_HTTP_IDEMPOTENCY_IN_PROGRESS', retryable: true, description: 'A request with the same key is still being processed; `Retry-After` says when to ask again.' },
  'idempotency-claim-lost': { status: 409, title: 'Idempotency claim lost', code: 'BULWARK_HTTP_IDEMPOTENCY_CLAIM_LOST', retryable: true, description: "The request ran past its key's lock and another request took the key over; its effect was rolled back." },
  'dependency-unavailable': { status: 503, title: 'Dependency unavailable', code: 'BULWARK_HTTP_DEPENDENCY_UNAVAILABLE', retryable: true, description: 'A circuit breaker, bulkhead or rate limiter in front of a dependency refused the call (`@bulwark/resilience`).' },
  'dependency-timeout': { status: 504, title: 'Dependency timed out', code: 'BULWARK_HTTP_DEPENDENCY_TIMEOUT', retryable: true, description: 'A call to a dependency ran out of its timeout or deadline (`@bulwark/resilience`).' },
} as const satisfies Record<string, ProblemType>;

/** Slug of a registered kit problem type. */
export type ProblemSlug = keyof typeof problemTypes;

/** The `type` URI of a slug: `https://bulwark.dev/problems/<slug>`. */
export function problemTypeUri(slug: string): string {
  return PROBLEM_BASE_URI + slug;
}
