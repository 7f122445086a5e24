/**
 * Virtual time for tests: timers fire only when the test advances the clock,
 * in due order, with pending promise callbacks run between them.
 *
 * @example
 * ```ts
 * const clock = new VirtualClock();
 * const policy = retry({ clock, backoff: { baseMs: 100, jitter: 'none' } });
 * const done = policy.execute(flaky);
 * await clock.advance(100);
 * ```
 */
import type { Clock, Timer } from '../clock.js';

interface VirtualTimer extends Timer {
  readonly due: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: VirtualTimer[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    const timer: VirtualTimer = {
      due: this.time + Math.max(0, delayMs),
      seq: this.seq++,
      callback,
      cancelled: false,
      cancel: () => {
        if (timer.cancelled) return;
        timer.cancelled = true;
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
    // Keep timers sorted by (due, seq): equal deadlines fire in the order they were set.
    let i = this.timers.length;
    while (i > 0 && (this.timers[i - 1] as VirtualTimer).due > timer.due) i--;
    this.timers.splice(i, 0, timer);
    return timer;
  }

  /** Timers set and neither fired nor cancelled. */
  pendingTimers(): number {
    return this.timers.length;
  }

  /** The time the next timer is due, if any. */
  nextDue(): number | undefined {
    return this.timers[0]?.due;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way,
   * each at its own time, with promise callbacks settled after each one.
   */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await flushMicrotasks();
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.due > target) break;
      this.timers.shift();
      this.time = Math.max(this.time, next.due);
      next.cancelled = true;
      next.callback();
      await flushMicrotasks();
    }
    this.time = target;
    await flushMicrotasks();
  }

  /** Fires timers until none is left (bounded, so a timer loop cannot hang a test). */
  async runAll(maxTimers = 10_000): Promise<void> {
    for (let n = 0; n < maxTimers; n++) {
      await flushMicrotasks();
      const next = this.timers[0];
      if (next === undefined) return;
      await this.advance(next.due - this.time);
    }
    throw new Error(`VirtualClock.runAll: still ${this.timers.length} timers after firing ${maxTimers}`);
  }
}

/** Lets every queued promise callback (and the ones they queue) run. */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
