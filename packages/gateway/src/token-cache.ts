/**
 * Verified access tokens, cached: a bounded LRU keyed by the token string,
 * each entry expiring at the token's `exp`. A repeated token costs a map
 * lookup instead of a signature check; concurrent first uses of one token
 * share one verification. Failures are not cached (a token that failed for a
 * transient reason, keys unavailable, may pass a moment later).
 */
import type { AuthUser, JwtVerifier } from '@bulwark/http/auth';

/** A cached verification. The proxy may keep a reference to one (per connection) and serve it while `live`. */
export interface TokenEntry {
  readonly user: AuthUser;
  /** Epoch ms at which the entry stops being served (the token's `exp`). */
  readonly expiresAt: number;
  /** Value of the cache's insertion counter when the entry was last moved to the back of the LRU order. */
  stamp: number;
}

export interface TokenCacheStats {
  size: number;
  hits: number;
  misses: number;
}

export class VerifiedTokenCache {
  private readonly entries = new Map<string, TokenEntry>();
  /** Counts insertions and moves: an entry whose stamp is more than half the capacity behind sits in the older half. */
  private clock = 0;
  /** Bumped by `clear()`: entries held outside the cache are stale once it moves. */
  generation = 0;
  private readonly pending = new Map<string, Promise<AuthUser>>();
  hits = 0;
  misses = 0;

  constructor(
    readonly verifier: JwtVerifier,
    readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cached user of `token` when it is cached and not expired; `undefined` otherwise (no verification). */
  peek(token: string): AuthUser | undefined {
    return this.lookup(token)?.user;
  }

  /** The live entry of `token` (a hit), or `undefined` (no verification). */
  lookup(token: string): TokenEntry | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(token);
      return undefined;
    }
    // Approximate LRU: an entry is moved to the back only once it has drifted into the older half
    // of the order (a delete+set per hit is ~100 ns; this is one subtraction for hot tokens).
    if (this.clock - entry.stamp > this.maxEntries >> 1) {
      this.entries.delete(token);
      entry.stamp = ++this.clock;
      this.entries.set(token, entry);
    }
    this.hits++;
    return entry;
  }

  /** True while `entry` (from `lookup`) may still be served: not expired and the cache not cleared since. */
  live(entry: TokenEntry, generation: number): boolean {
    return generation === this.generation && entry.expiresAt > this.now();
  }

  /** Verifies `token`, or answers from the cache. Rejects with the verifier's auth errors. */
  verify(token: string): Promise<AuthUser> {
    const cached = this.peek(token);
    if (cached !== undefined) return Promise.resolve(cached);
    const inFlight = this.pending.get(token);
    if (inFlight !== undefined) return inFlight;
    this.misses++;
    const promise = this.verifier.verify(token).then(
      (user) => {
        this.pending.delete(token);
        const exp = typeof user.claims.exp === 'number' ? user.claims.exp * 1000 : 0;
        if (exp > this.now()) {
          if (this.entries.size >= this.maxEntries) {
            const oldest = this.entries.keys().next();
            if (oldest.done !== true) this.entries.delete(oldest.value);
          }
          this.entries.set(token, { user, expiresAt: exp, stamp: ++this.clock });
        }
        return user;
      },
      (error: unknown) => {
        this.pending.delete(token);
        throw error;
      },
    );
    this.pending.set(token, promise);
    return promise;
  }

  clear(): void {
    this.entries.clear();
    this.generation++;
  }

  stats(): TokenCacheStats {
    return { size: this.entries.size, hits: this.hits, misses: this.misses };
  }
}
