/**
 * Wall-clock time for token checks. JWT claims (`exp`, `nbf`, `iat`) are
 * epoch seconds, so unlike `@bulwark/resilience`'s monotonic `Clock` this one
 * reads epoch milliseconds. Tests pass a `VirtualClock` started at an epoch
 * time (`new VirtualClock(Date.now())`): only `now()` is read.
 */
export interface WallClock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real wall clock. */
export const systemWallClock: WallClock = { now: () => Date.now() };
