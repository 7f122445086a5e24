/**
 * The error family of `@bulwark/http/auth`.
 *
 * Every error has a stable `code`, a `retryable` flag, the HTTP `status` it
 * answers with and a `toProblem()` the service kit renders as RFC 9457
 * `application/problem+json`. Token failures carry a stable `reason` code and
 * nothing else: a client (or an attacker) learns which rule refused the token,
 * never the token's content, the keys or the library's message.
 *
 * Identity survives two installed copies of this package: `instanceof` is
 * decided by a `Symbol.for` brand and the code, and `isAuthError` reads the brand.
 */
import { isInstanceOfErrorClass } from '@bulwark/resilience';

const kBrand = Symbol.for('bulwark.http.auth.error');

/** Base of the problem `type` URIs. */
export const PROBLEM_BASE = 'https://bulwark.dev/problems/';

/** Stable codes: HTTP status, retryability, problem slug and title. */
export const authErrorCodes = {
  BULWARK_AUTH_UNAUTHENTICATED: { status: 401, retryable: false, slug: 'unauthenticated', title: 'Authentication required' },
  BULWARK_AUTH_INVALID_TOKEN: { status: 401, retryable: false, slug: 'invalid-token', title: 'Invalid access token' },
  BULWARK_AUTH_TOKEN_EXPIRED: { status: 401, retryable: false, slug: 'token-expired', title: 'Access token expired' },
  BULWARK_AUTH_FORBIDDEN: { status: 403, retryable: false, slug: 'forbidden', title: 'Forbidden' },
  BULWARK_AUTH_INSUFFICIENT_SCOPE: { status: 403, retryable: false, slug: 'insufficient-scope', title: 'Insufficient scope' },
  BULWARK_AUTH_KEYS_UNAVAILABLE: { status: 503, retryable: true, slug: 'auth-keys-unavailable', title: 'Token signing keys unavailable' },
  BULWARK_AUTH_INVALID_CREDENTIALS: { status: 401, retryable: false, slug: 'invalid-credentials', title: 'Invalid username or password' },
  BULWARK_AUTH_INVALID_REFRESH_TOKEN: { status: 401, retryable: false, slug: 'invalid-refresh-token', title: 'Invalid refresh token' },
  BULWARK_AUTH_USERNAME_TAKEN: { status: 409, retryable: false, slug: 'username-taken', title: 'Username already registered' },
  BULWARK_AUTH_INVALID_REQUEST: { status: 400, retryable: false, slug: 'invalid-request', title: 'Invalid request' },
  BULWARK_AUTH_BUSY: { status: 503, retryable: true, slug: 'auth-busy', title: 'Too many sign-ins in progress' },
  BULWARK_AUTH_INVALID_OPTION: { status: 500, retryable: false, slug: 'internal', title: 'Internal server error' },
} as const satisfies Record<string, { status: number; retryable: boolean; slug: string; title: string }>;

export type AuthErrorCode = keyof typeof authErrorCodes;

/** Why a token was refused. Stable: clients and dashboards may match on these. */
export type TokenFailureReason =
  | 'malformed'
  | 'too-large'
  | 'algorithm'
  | 'signature'
  | 'unknown-key'
  | 'issuer'
  | 'audience'
  | 'type'
  | 'not-yet-valid'
  | 'issued-in-future'
  | 'missing-claim'
  | 'claims'
  | 'expired';

/** Why a refresh token was refused. `reused` means its whole family was revoked. */
export type RefreshFailureReason = 'malformed' | 'unknown' | 'expired' | 'reused' | 'revoked';

/** An RFC 9457 problem, as the service kit renders it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  [extension: string]: unknown;
}

/** Base class of every auth error. */
export class AuthError extends Error {
  /** Code of the class, read by `instanceof` checks. */
  static readonly code: string | undefined = undefined;

  readonly code: AuthErrorCode;
  readonly retryable: boolean;
  /** HTTP status this error answers with. */
  readonly status: number;
  /** Stable reason code, when the class has several reasons. */
  readonly reason: string | undefined;
  /** Response headers the kit adds (e.g. `WWW-Authenticate`). */
  readonly headers: Record<string, string> | undefined;

  constructor(code: AuthErrorCode, message: string, options: { reason?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = authErrorCodes[code].retryable;
    this.status = authErrorCodes[code].status;
    this.reason = options.reason;
    this.headers = options.headers;
  }

  /** The problem document: stable `type` and `title`, the reason code, no internals. */
  toProblem(): Problem {
    const entry = authErrorCodes[this.code];
    const problem: Problem = { type: PROBLEM_BASE + entry.slug, title: entry.title, status: entry.status, code: this.code };
    if (this.reason !== undefined) problem.reason = this.reason;
    return problem;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstanceOfErrorClass(this, value, isAuthError);
  }
}

Object.defineProperty(AuthError.prototype, kBrand, { value: true });

/** True for any auth error, from any installed copy of this package. */
export function isAuthError(value: unknown): value is AuthError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
}

const INVALID_TOKEN_HEADERS = Object.freeze({ 'www-authenticate': 'Bearer error="invalid_token"' });

/** No credentials were presented where they are required. 401 with a bare `Bearer` challenge (RFC 6750 §3.1). */
export class UnauthenticatedError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_UNAUTHENTICATED';
  constructor() {
    super('BULWARK_AUTH_UNAUTHENTICATED', 'no bearer token presented', { headers: { 'www-authenticate': 'Bearer' } });
  }
}

/** A token was presented and refused; `reason` says which rule refused it. */
export class InvalidTokenError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_INVALID_TOKEN';
  declare readonly reason: Exclude<TokenFailureReason, 'expired'>;
  constructor(reason: Exclude<TokenFailureReason, 'expired'>, cause?: unknown) {
    super('BULWARK_AUTH_INVALID_TOKEN', `access token refused (${reason})`, { reason, headers: { ...INVALID_TOKEN_HEADERS }, cause });
  }
}

/** The token's `exp` (or its maximum age) has passed, beyond the allowed clock skew. */
export class TokenExpiredError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_TOKEN_EXPIRED';
  declare readonly reason: 'expired';
  constructor(cause?: unknown) {
    super('BULWARK_AUTH_TOKEN_EXPIRED', 'access token expired', { reason: 'expired', headers: { ...INVALID_TOKEN_HEADERS }, cause });
  }
}

/** A valid token whose subject lacks every role the route accepts. */
export class ForbiddenError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_FORBIDDEN';
  constructor() {
    super('BULWARK_AUTH_FORBIDDEN', 'the subject lacks a required role', { reason: 'role' });
  }
}

/** A valid token that lacks a scope the route requires. The challenge names the scopes needed. */
export class InsufficientScopeError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_INSUFFICIENT_SCOPE';
  readonly requiredScopes: readonly string[];
  constructor(requiredScopes: readonly string[]) {
    super('BULWARK_AUTH_INSUFFICIENT_SCOPE', 'the token lacks a required scope', {
      reason: 'scope',
      headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="${requiredScopes.join(' ')}"` },
    });
    this.requiredScopes = requiredScopes;
  }

  override toProblem(): Problem {
    return { ...super.toProblem(), requiredScopes: [...this.requiredScopes] };
  }
}

/** The issuer's keys could not be fetched and none are cached. Retryable: the JWKS endpoint may come back. */
export class KeysUnavailableError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_KEYS_UNAVAILABLE';
  constructor(cause?: unknown) {
    super('BULWARK_AUTH_KEYS_UNAVAILABLE', 'the issuer keys are unavailable', { cause, headers: { 'retry-after': '1' } });
  }
}

/** Wrong password or unknown user: one error for both, so responses do not reveal which users exist. */
export class InvalidCredentialsError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_INVALID_CREDENTIALS';
  constructor() {
    super('BULWARK_AUTH_INVALID_CREDENTIALS', 'invalid username or password');
  }
}

/** A refresh token was unknown, expired, revoked, or reused (which revoked its family). */
export class InvalidRefreshTokenError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_INVALID_REFRESH_TOKEN';
  declare readonly reason: RefreshFailureReason;
  constructor(reason: RefreshFailureReason) {
    super('BULWARK_AUTH_INVALID_REFRESH_TOKEN', `refresh token refused (${reason})`, { reason });
  }
}

/** Registration with a username that already exists. */
export class UsernameTakenError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_USERNAME_TAKEN';
  constructor() {
    super('BULWARK_AUTH_USERNAME_TAKEN', 'username already registered');
  }
}

/** A malformed request body; `field` names the offending field. */
export class InvalidAuthRequestError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_INVALID_REQUEST';
  readonly field: string | undefined;
  constructor(field: string | undefined, detail: string) {
    super('BULWARK_AUTH_INVALID_REQUEST', detail, { reason: 'body' });
    this.field = field;
  }

  override toProblem(): Problem {
    const problem: Problem = { ...super.toProblem(), detail: this.message };
    if (this.field !== undefined) problem.field = this.field;
    return problem;
  }
}

/** Too many password hashes queued: refused fast rather than letting sign-ins starve the thread pool. */
export class AuthBusyError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_BUSY';
  constructor(cause?: unknown) {
    super('BULWARK_AUTH_BUSY', 'too many password checks in progress', { cause, headers: { 'retry-after': '1' } });
  }
}

/** A verifier, issuer or auth service was configured with an unusable option. Thrown at construction. */
export class AuthConfigError extends AuthError {
  static override readonly code = 'BULWARK_AUTH_INVALID_OPTION';
  readonly option: string;
  constructor(option: string, expected: string) {
    super('BULWARK_AUTH_INVALID_OPTION', `auth option "${option}" must be ${expected}`);
    this.option = option;
  }
}
