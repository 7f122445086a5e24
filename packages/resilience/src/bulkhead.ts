/**
 * Bulkhead: at most `maxConcurrent` calls to one dependency at a time, at most
 * `maxQueue` more waiting (FIFO), none waiting longer than `maxQueueWaitMs`.
 * A slow dependency then ties up its own slots, not the whole process.
 *
 * A freed slot passes straight to the next waiter, so a burst cannot overtake
 * the queue. A waiter whose caller gives up leaves the queue at once.
 */
import { systemClock, type Clock, type Timer } from './clock.js';
import { BulkheadRejectedError, fastError } from './errors.js';
import { PolicyEvents } from './events.js';
import * as check from './options.js';
import { PolicyBase, type Chain } from './policy.js';
import { rejectSoon } from './reject-soon.js';
import type { Scope } from './scope.js';

export interface BulkheadOptions {
  /** Name in events and errors. Default `"bulkhead"`. */
  name?: string;
  /** Calls allowed to run at once. */
  maxConcurrent: number;
  /** Calls allowed to wait for a slot. Default 0: reject at once when full. */
  maxQueue?: number;
  /** Longest a call may wait for a slot. Default: no limit beyond the call's own deadline. */
  maxQueueWaitMs?: number;
  clock?: Clock;
}

export interface BulkheadEvents {
  rejected: { reason: 'full' | 'queue-timeout'; active: number; queued: number };
}

export interface BulkheadStats {
  active: number;
  queued: number;
  maxConcurrent: number;
  maxQueue: number;
}

interface Waiter {
  done: boolean;
  grant(): void;
}

export class BulkheadPolicy extends PolicyBase {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly maxQueueWaitMs: number;
  readonly events: PolicyEvents<BulkheadEvents>;
  readonly on: PolicyEvents<BulkheadEvents>['on'];
  private active = 0;
  private queued = 0;
  private queue: (Waiter | undefined)[] = [];
  private head = 0;

  constructor(options: BulkheadOptions) {
    const p = 'bulkhead';
    super(check.name(p, options.name ?? 'bulkhead'), options.clock ?? systemClock);
    this.maxConcurrent = check.integer(p, 'maxConcurrent', options.maxConcurrent, 1);
    this.maxQueue = check.integer(p, 'maxQueue', options.maxQueue ?? 0, 0);
    this.maxQueueWaitMs = check.duration(p, 'maxQueueWaitMs', options.maxQueueWaitMs ?? Infinity, { allowInfinity: true });
    this.events = new PolicyEvents('bulkhead', this.name);
    this.on = this.events.on.bind(this.events);
  }

  stats(): BulkheadStats {
    return { active: this.active, queued: this.queued, maxConcurrent: this.maxConcurrent, maxQueue: this.maxQueue };
  }

  run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    if (this.active < this.maxConcurrent) {
      this.active++;
      return this.runHeld(chain, scope, index);
    }
    if (this.queued >= this.maxQueue) return rejectSoon(this.reject('full'));
    return this.wait(scope).then(() => this.runHeld(chain, scope, index));
  }

  private runHeld<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    return chain.next(scope, index).then(this.releaseWith, this.releaseThrowing) as Promise<T>;
  }

  private readonly releaseWith = (value: unknown): unknown => {
    this.release();
    return value;
  };

  private readonly releaseThrowing = (error: unknown): never => {
    this.release();
    throw error;
  };

  /** Hands the slot to the next live waiter, or frees it. */
  private release(): void {
    const queue = this.queue;
    while (this.head < queue.length) {
      const waiter = queue[this.head];
      queue[this.head++] = undefined;
      if (waiter !== undefined && !waiter.done) {
        this.compact();
        waiter.grant();
        return;
      }
    }
    this.compact();
    this.active--;
  }

  private wait(scope: Scope): Promise<void> {
    if (scope.aborted) return rejectSoon(scope.reason);
    return new Promise<void>((resolve, reject) => {
      let timer: Timer | undefined;
      const leave = (): void => {
        waiter.done = true;
        this.queued--;
        stopAbort();
        timer?.cancel();
      };
      const waiter: Waiter = {
        done: false,
        grant: () => {
          leave();
          resolve();
        },
      };
      const stopAbort = scope.onAbort((reason) => {
        leave();
        reject(reason);
      });
      const waitMs = Math.min(this.maxQueueWaitMs, scope.remaining());
      if (waitMs !== Infinity) {
        timer = this.clock.setTimer(() => {
          leave();
          reject(this.reject('queue-timeout'));
        }, waitMs);
      }
      this.queue.push(waiter);
      this.queued++;
    });
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private reject(reason: 'full' | 'queue-timeout'): BulkheadRejectedError {
    if (this.events.wants('rejected')) this.events.emit('rejected', { reason, active: this.active, queued: this.queued });
    return fastError(BulkheadRejectedError, 'BULWARK_BULKHEAD_REJECTED', `bulkhead "${this.name}" rejected the call (${reason})`, { bulkhead: this.name, reason });
  }
}

/**
 * Limits concurrent calls to a dependency, with an optional bounded queue.
 *
 * @example
 * ```ts
 * const inventory = bulkhead({ maxConcurrent: 20, maxQueue: 10, maxQueueWaitMs: 50 });
 * ```
 */
export function bulkhead(options: BulkheadOptions): BulkheadPolicy {
  return new BulkheadPolicy(options);
}
