/**
 * Verifying access tokens (JWT) from one or more issuers with `jose`.
 *
 * Each issuer has its own algorithm allow-list, drawn only from the asymmetric
 * `EdDSA`, `ES256` and `RS256`: `none` and every `HS*` algorithm are refused
 * before a key is looked up, which closes the "HS256 signed with the public
 * key" confusion attack. The issuer is chosen by the token's (unverified)
 * `iss` and then checked again by jose against that issuer's keys, so a token
 * cannot pick keys it was not signed with.
 *
 * Checks: signature, `exp` and `nbf` with a bounded clock skew, `iat` not in
 * the future (and an optional maximum age), `iss`, `aud`, an optional `typ`
 * header, and required claims (`sub` and `exp` always). Failures become
 * `InvalidTokenError` / `TokenExpiredError` with a stable reason code.
 *
 * @example
 * ```ts
 * const verifier = new JwtVerifier({
 *   issuers: [{ issuer: 'https://auth.shop.local', audience: 'orders', jwksUri: 'https://auth.shop.local/.well-known/jwks.json' }],
 * });
 * const user = await verifier.verify(token); // { sub, scopes, roles, claims, issuer }
 * ```
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { systemWallClock, type WallClock } from './clock.js';
import { AuthConfigError, InvalidTokenError, isAuthError, TokenExpiredError, type TokenFailureReason } from './errors.js';
import { JwksCache, type JwksCacheStats } from './jwks-cache.js';

/** The only signing algorithms a verifier accepts. */
export const ALLOWED_ALGORITHMS = ['EdDSA', 'ES256', 'RS256'] as const;
export type AllowedAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];

/** One trusted issuer. */
export interface IssuerConfig {
  /** The exact `iss` value. */
  issuer: string;
  /** Accepted `aud` values: the token must name at least one. */
  audience: string | readonly string[];
  /** Where to fetch the issuer's JWKS (cached; see `JwksCache`). Exactly one of `jwksUri` and `jwks`. */
  jwksUri?: string;
  /** A fixed key set (tests, or keys distributed by configuration). */
  jwks?: JSONWebKeySet;
  /** Algorithms this issuer signs with. Default `['EdDSA', 'ES256']`. */
  algorithms?: readonly AllowedAlgorithm[];
  /** Claims that must be present besides `sub` and `exp`. */
  requiredClaims?: readonly string[];
  /** Required `typ` header (e.g. `at+jwt`, RFC 9068). Default: not checked. */
  typ?: string;
  /** Refuse tokens whose `iat` is older than this. Default: no limit beyond `exp`. */
  maxTokenAgeSec?: number;
  /** Claim holding the roles (an array of strings). Default `roles`. */
  rolesClaim?: string;
  /** JWKS cache tuning. */
  jwksCacheMaxAgeMs?: number;
  jwksCooldownMs?: number;
  jwksTimeoutMs?: number;
}

export interface JwtVerifierOptions {
  issuers: readonly IssuerConfig[];
  /** Tolerated clock difference with issuers, in seconds. Default 30, at most 300. */
  clockSkewSec?: number;
  /** Longest token accepted, in characters. Default 8 192. */
  maxTokenLength?: number;
  clock?: WallClock;
}

/** The authenticated subject, as routes see it on `request.user`. */
export interface AuthUser {
  /** The `sub` claim. */
  readonly sub: string;
  /** The `iss` of the token. */
  readonly issuer: string;
  /** From `scope` (space-separated) and/or `scp` (array or string). */
  readonly scopes: readonly string[];
  /** From the issuer's roles claim (default `roles`). */
  readonly roles: readonly string[];
  /** Every claim of the verified token. */
  readonly claims: Readonly<JWTPayload>;
}

interface Issuer {
  config: IssuerConfig;
  algorithms: AllowedAlgorithm[];
  audience: string[];
  requiredClaims: string[];
  getKey: JWTVerifyGetKey;
  cache: JwksCache | undefined;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export class JwtVerifier {
  readonly clockSkewSec: number;
  readonly maxTokenLength: number;
  private readonly clock: WallClock;
  private readonly issuers = new Map<string, Issuer>();

  constructor(options: JwtVerifierOptions) {
    if (typeof options.issuers !== 'object' || options.issuers === null || options.issuers.length === 0) throw new AuthConfigError('issuers', 'a non-empty array');
    this.clockSkewSec = options.clockSkewSec ?? 30;
    if (!(this.clockSkewSec >= 0 && this.clockSkewSec <= 300)) throw new AuthConfigError('clockSkewSec', 'between 0 and 300 seconds');
    this.maxTokenLength = options.maxTokenLength ?? 8_192;
    if (!Number.isInteger(this.maxTokenLength) || this.maxTokenLength < 64) throw new AuthConfigError('maxTokenLength', 'an integer >= 64');
    this.clock = options.clock ?? systemWallClock;
    for (const config of options.issuers) {
      if (typeof config.issuer !== 'string' || config.issuer === '') throw new AuthConfigError('issuers[].issuer', 'a non-empty string');
      if (this.issuers.has(config.issuer)) throw new AuthConfigError('issuers[].issuer', `unique (${config.issuer} twice)`);
      const algorithms = [...(config.algorithms ?? ['EdDSA', 'ES256'])];
      if (algorithms.length === 0 || algorithms.some((a) => !(ALLOWED_ALGORITHMS as readonly string[]).includes(a))) {
        throw new AuthConfigError(`issuers[${config.issuer}].algorithms`, `a non-empty subset of ${ALLOWED_ALGORITHMS.join(', ')}`);
      }
      const audience = typeof config.audience === 'string' ? [config.audience] : [...(config.audience ?? [])];
      if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) throw new AuthConfigError(`issuers[${config.issuer}].audience`, 'a non-empty string or array of strings');
      if ((config.jwksUri === undefined) === (config.jwks === undefined)) throw new AuthConfigError(`issuers[${config.issuer}]`, 'given exactly one of jwksUri and jwks');
      let cache: JwksCache | undefined;
      let getKey: JWTVerifyGetKey;
      if (config.jwksUri !== undefined) {
        if (!/^https?:\/\//.test(config.jwksUri)) throw new AuthConfigError(`issuers[${config.issuer}].jwksUri`, 'an http(s) URL');
        cache = new JwksCache({
          uri: config.jwksUri,
          clock: this.clock,
          ...(config.jwksCacheMaxAgeMs === undefined ? {} : { cacheMaxAgeMs: config.jwksCacheMaxAgeMs }),
          ...(config.jwksCooldownMs === undefined ? {} : { cooldownMs: config.jwksCooldownMs }),
          ...(config.jwksTimeoutMs === undefined ? {} : { timeoutMs: config.jwksTimeoutMs }),
        });
        getKey = cache.getKey;
      } else {
        getKey = createLocalJWKSet(config.jwks as JSONWebKeySet);
      }
      const requiredClaims = [...new Set(['sub', 'exp', ...(config.requiredClaims ?? [])])];
      this.issuers.set(config.issuer, { config, algorithms, audience, requiredClaims, getKey, cache });
    }
  }

  /**
   * Verifies `token` and returns its subject. Throws `InvalidTokenError` or
   * `TokenExpiredError` (401), or `KeysUnavailableError` (503) when the
   * issuer's keys cannot be fetched and none are cached.
   */
  async verify(token: string): Promise<AuthUser> {
    if (typeof token !== 'string') throw new InvalidTokenError('malformed');
    if (token.length > this.maxTokenLength) throw new InvalidTokenError('too-large');
    if (!COMPACT_JWS.test(token)) throw new InvalidTokenError('malformed');
    let alg: unknown;
    let iss: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
      iss = decodeJwt(token).iss;
    } catch (error) {
      throw new InvalidTokenError('malformed', error);
    }
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (issuer === undefined) throw new InvalidTokenError('issuer');
    // Refused before any key lookup: `none`, HS*, and anything this issuer does not sign with.
    if (typeof alg !== 'string' || !(issuer.algorithms as string[]).includes(alg)) throw new InvalidTokenError('algorithm');
    const nowMs = this.clock.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.getKey, {
        issuer: issuer.config.issuer,
        audience: issuer.audience,
        algorithms: issuer.algorithms,
        clockTolerance: this.clockSkewSec,
        currentDate: new Date(nowMs),
        requiredClaims: issuer.requiredClaims,
        ...(issuer.config.typ === undefined ? {} : { typ: issuer.config.typ }),
        ...(issuer.config.maxTokenAgeSec === undefined ? {} : { maxTokenAge: issuer.config.maxTokenAgeSec }),
      }));
    } catch (error) {
      throw translate(error);
    }
    if (typeof payload.iat === 'number' && payload.iat > nowMs / 1000 + this.clockSkewSec) throw new InvalidTokenError('issued-in-future');
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new InvalidTokenError('missing-claim');
    return {
      sub: payload.sub,
      issuer: issuer.config.issuer,
      scopes: scopesOf(payload),
      roles: stringList(payload[issuer.config.rolesClaim ?? 'roles']),
      claims: payload,
    };
  }

  /** JWKS cache statistics per issuer with a `jwksUri`. */
  jwksStats(): Record<string, JwksCacheStats> {
    const out: Record<string, JwksCacheStats> = {};
    for (const [name, issuer] of this.issuers) if (issuer.cache !== undefined) out[name] = issuer.cache.stats();
    return out;
  }
}

/** Scopes from `scope` (RFC 8693: space-separated) and `scp` (array or space-separated). */
function scopesOf(payload: JWTPayload): string[] {
  const scopes = new Set<string>();
  for (const claim of [payload.scope, payload.scp]) {
    if (typeof claim === 'string') for (const s of claim.split(' ')) if (s !== '') scopes.add(s);
    if (Array.isArray(claim)) for (const s of claim) if (typeof s === 'string' && s !== '') scopes.add(s);
  }
  return [...scopes];
}

function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is string => typeof v === 'string' && v !== '');
}

/** jose's errors to stable reasons. Nothing of jose's message reaches the client. */
function translate(error: unknown): Error {
  if (isAuthError(error)) return error;
  if (error instanceof joseErrors.JWTExpired) return new TokenExpiredError(error);
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    let reason: Exclude<TokenFailureReason, 'expired'> = 'claims';
    if (error.reason === 'missing') reason = 'missing-claim';
    else if (error.claim === 'iss') reason = 'issuer';
    else if (error.claim === 'aud') reason = 'audience';
    else if (error.claim === 'nbf') reason = 'not-yet-valid';
    else if (error.claim === 'iat') reason = 'issued-in-future';
    else if (error.claim === 'typ') reason = 'type';
    return new InvalidTokenError(reason, error);
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported) return new InvalidTokenError('algorithm', error);
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new InvalidTokenError('signature', error);
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) return new InvalidTokenError('unknown-key', error);
  return new InvalidTokenError('malformed', error);
}
