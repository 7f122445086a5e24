/**
 * Time, injected. Every policy whose behaviour depends on time takes a `Clock`,
 * so tests run on virtual time (`@bulwark/resilience/testing`).
 */
import { TimerQueue } from './timer-queue.js';

/** A scheduled callback. `cancel()` is idempotent. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds. Only differences between two readings mean anything. */
  now(): number;
  /** Calls `callback` once, `delayMs` from now. */
  setTimer(callback: () => void, delayMs: number): Timer;
}

const queue = new TimerQueue(() => performance.now());

/**
 * The real clock: `performance.now()` and one coalesced timer queue, so a
 * million in-flight timeouts share one `setTimeout`, not a million.
 */
export const systemClock: Clock & { pendingTimers(): number } = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => queue.schedule(callback, delayMs),
  pendingTimers: () => queue.size,
};
