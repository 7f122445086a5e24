/**
 * One issuer's verification keys: a JSON Web Key Set fetched from its
 * `jwks_uri`, cached, and refreshed on two occasions:
 *
 * - the cache is older than `cacheMaxAgeMs` (refetched on the next lookup; on
 *   failure the stale keys keep serving, so a JWKS outage does not become an
 *   auth outage);
 * - a token names a `kid` the cache does not hold (key rotation). Such a
 *   refetch happens at most once per `cooldownMs`, measured from the last
 *   attempt, so a flood of tokens with made-up `kid`s costs the issuer one
 *   request per cooldown, not one per token.
 *
 * Concurrent lookups share one fetch in flight. Key selection itself (kid,
 * alg, `use`, `key_ops`) is jose's `createLocalJWKSet`; the fetch is undici
 * with a timeout and a size cap.
 */
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput, type CryptoKey } from 'jose';
import { request } from 'undici';
import { discard, readCapped } from '../client/read-body.js';
import { systemWallClock, type WallClock } from './clock.js';
import { KeysUnavailableError } from './errors.js';

export interface JwksCacheOptions {
  /** Where the issuer publishes its keys. */
  uri: string;
  /** How long fetched keys are fresh. Default 10 minutes. */
  cacheMaxAgeMs?: number;
  /** Least time between two fetches triggered by unknown key ids (or failures). Default 30 s. */
  cooldownMs?: number;
  /** Time allowed for one fetch. Default 5 s. */
  timeoutMs?: number;
  /** Largest key set accepted. Default 64 KiB. */
  maxBytes?: number;
  clock?: WallClock;
}

/** What a `JwksCache` has done, for tests and metrics. */
export interface JwksCacheStats {
  fetches: number;
  failures: number;
  keys: number;
}

type Resolver = ReturnType<typeof createLocalJWKSet>;

export class JwksCache {
  readonly uri: string;
  private readonly cacheMaxAgeMs: number;
  private readonly cooldownMs: number;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly clock: WallClock;
  private resolver: Resolver | undefined;
  private keyCount = 0;
  private fetchedAt = -Infinity;
  private attemptedAt = -Infinity;
  private inFlight: Promise<void> | undefined;
  private fetches = 0;
  private failures = 0;

  constructor(options: JwksCacheOptions) {
    this.uri = options.uri;
    this.cacheMaxAgeMs = options.cacheMaxAgeMs ?? 600_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxBytes = options.maxBytes ?? 65_536;
    this.clock = options.clock ?? systemWallClock;
  }

  /** The key for a token's protected header: a jose key resolver (`jwtVerify(token, cache.getKey)`). */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const now = this.clock.now();
    if (this.resolver === undefined) {
      await this.refresh();
    } else if (now - this.fetchedAt >= this.cacheMaxAgeMs && now - this.attemptedAt >= this.cooldownMs) {
      // Stale: try once per cooldown, keep the old keys if the issuer is down.
      await this.refresh().catch(() => undefined);
    }
    const resolver = this.resolver;
    if (resolver === undefined) throw new KeysUnavailableError();
    try {
      return await resolver(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || this.clock.now() - this.attemptedAt < this.cooldownMs) throw error;
    }
    // An unknown kid: the issuer may have rotated. One refetch per cooldown.
    await this.refresh().catch(() => undefined);
    return (this.resolver as Resolver)(header, token);
  };

  stats(): JwksCacheStats {
    return { fetches: this.fetches, failures: this.failures, keys: this.keyCount };
  }

  /** Fetches the key set now (single flight). Rejects with `KeysUnavailableError`. */
  refresh(): Promise<void> {
    this.inFlight ??= this.fetch().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetch(): Promise<void> {
    this.attemptedAt = this.clock.now();
    this.fetches++;
    try {
      const response = await request(this.uri, {
        method: 'GET',
        headers: { accept: 'application/jwk-set+json, application/json' },
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (response.statusCode !== 200) {
        discard(response.body);
        throw new Error(`JWKS endpoint answered ${response.statusCode}`);
      }
      const body = await readCapped(response.body, this.maxBytes, response.headers['content-length']);
      const jwks = JSON.parse(body.toString('utf8')) as JSONWebKeySet;
      const resolver = createLocalJWKSet(jwks); // validates the set's shape
      this.resolver = resolver;
      this.keyCount = jwks.keys.length;
      this.fetchedAt = this.clock.now();
    } catch (error) {
      this.failures++;
      throw new KeysUnavailableError(error);
    }
  }
}
