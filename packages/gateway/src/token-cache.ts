/**
 * Verified access tokens, cached: a bounded LRU keyed by the token string,
 * each entry expiring at the token's `exp`. A repeated token costs a map
 * lookup instead of a signature check; concurrent first uses of one token
 * share one verification. Failures are not cached (a token that failed for a
 * transient reason, keys unavailable, may pass a moment later).
 */
import type { AuthUser, JwtVerifier } from '@bulwark/http/auth';

interface Entry {
  user: AuthUser;
  /** Epoch ms at which the entry stops being served (the token's `exp`). */
  expiresAt: number;
}

export interface TokenCacheStats {
  size: number;
  hits: number;
  misses: number;
}

export class VerifiedTokenCache {
  private readonly entries = new Map<string, Entry>();
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
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(token);
      return undefined;
    }
    // LRU: move to the back only once in a while would be cheaper; a delete+set is ~100 ns.
    this.entries.delete(token);
    this.entries.set(token, entry);
    this.hits++;
    return entry.user;
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
          this.entries.set(token, { user, expiresAt: exp });
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
  }

  stats(): TokenCacheStats {
    return { size: this.entries.size, hits: this.hits, misses: this.misses };
  }
}
