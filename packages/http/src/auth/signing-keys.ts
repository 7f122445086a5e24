/**
 * The keys an auth module signs access tokens with, and the public key set it
 * publishes at `/.well-known/jwks.json`.
 *
 * One key is active and signs; `rotate()` makes a new one active and keeps the
 * previous public key in the published set for `retainMs` (at least the
 * access-token lifetime plus skew), so tokens signed just before a rotation
 * keep verifying everywhere until they expire. Key ids are RFC 7638
 * thumbprints, so the same key always has the same `kid`.
 *
 * Keys are generated in memory by default. Processes that must share keys
 * (several replicas behind one issuer name) load the same private JWKs with
 * `SigningKeyRing.fromPrivateJwks`, from a secret store.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';
import { systemWallClock, type WallClock } from './clock.js';
import { AuthConfigError } from './errors.js';

/** Algorithms the auth module signs with. */
export type SigningAlgorithm = 'EdDSA' | 'ES256';

export interface SigningKeyRingOptions {
  /** Default `EdDSA` (Ed25519). */
  alg?: SigningAlgorithm;
  /** How long a rotated-out public key stays published. Default 1 hour. */
  retainMs?: number;
  clock?: WallClock;
}

/** The active signing key. */
export interface ActiveKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: CryptoKey;
}

interface RingKey extends ActiveKey {
  readonly publicJwk: JWK;
  /** Epoch ms after which the public key is no longer published (Infinity while active). */
  retireAt: number;
}

export class SigningKeyRing {
  readonly alg: SigningAlgorithm;
  readonly retainMs: number;
  private readonly clock: WallClock;
  private keys: RingKey[] = [];

  private constructor(options: SigningKeyRingOptions) {
    this.alg = options.alg ?? 'EdDSA';
    if (this.alg !== 'EdDSA' && this.alg !== 'ES256') throw new AuthConfigError('alg', '"EdDSA" or "ES256"');
    this.retainMs = options.retainMs ?? 3_600_000;
    if (!(this.retainMs >= 0) || !Number.isFinite(this.retainMs)) throw new AuthConfigError('retainMs', 'a finite number of milliseconds >= 0');
    this.clock = options.clock ?? systemWallClock;
  }

  /** A ring with one freshly generated key. */
  static async generate(options: SigningKeyRingOptions = {}): Promise<SigningKeyRing> {
    const ring = new SigningKeyRing(options);
    await ring.rotate();
    return ring;
  }

  /**
   * A ring from private JWKs (the last one signs; the others are published
   * for `retainMs`). Each JWK must be a private key of the ring's algorithm.
   */
  static async fromPrivateJwks(jwks: readonly JWK[], options: SigningKeyRingOptions = {}): Promise<SigningKeyRing> {
    const ring = new SigningKeyRing(options);
    if (typeof jwks !== 'object' || jwks === null || jwks.length === 0) throw new AuthConfigError('jwks', 'a non-empty array of private JWKs');
    for (const jwk of jwks) {
      if (typeof jwk.d !== 'string') throw new AuthConfigError('jwks[]', 'private keys (with "d")');
      const privateKey = (await importJWK({ ...jwk, alg: ring.alg }, ring.alg, { extractable: true }).catch(() => {
        throw new AuthConfigError('jwks[]', `${ring.alg} private keys`);
      })) as CryptoKey;
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart } = jwk;
      await ring.add(privateKey, publicPart);
    }
    return ring;
  }

  /** Generates a new active key; returns its `kid`. The previous key stays published for `retainMs`. */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair(this.alg, { extractable: true });
    return this.add(privateKey, await exportJWK(publicKey));
  }

  /** The key that signs now. */
  current(): ActiveKey {
    const key = this.keys.at(-1);
    if (key === undefined) throw new AuthConfigError('keys', 'non-empty');
    return key;
  }

  /** The public key set to publish: the active key and the retired ones still within `retainMs`. */
  jwks(): JSONWebKeySet {
    const now = this.clock.now();
    this.keys = this.keys.filter((k) => k.retireAt > now);
    return { keys: this.keys.map((k) => ({ ...k.publicJwk })) };
  }

  /** The active private key as a JWK, to share with other replicas through a secret store. */
  async exportActivePrivateJwk(): Promise<JWK> {
    const key = this.current();
    return { ...(await exportJWK(key.privateKey)), kid: key.kid, alg: key.alg };
  }

  private async add(privateKey: CryptoKey, publicJwk: JWK): Promise<string> {
    const kid = await calculateJwkThumbprint(publicJwk);
    const now = this.clock.now();
    const previous = this.keys.at(-1);
    if (previous !== undefined) previous.retireAt = now + this.retainMs;
    this.keys = this.keys.filter((k) => k.kid !== kid);
    this.keys.push({ kid, alg: this.alg, privateKey, publicJwk: { ...publicJwk, kid, alg: this.alg, use: 'sig' }, retireAt: Infinity });
    return kid;
  }
}
