/**
 * Coalesced timers: callbacks due in the same millisecond share a bucket, and
 * one Node timer is armed for the earliest bucket. Scheduling and cancelling
 * cost a Map lookup and a Set insert/delete; no Node timer is created per call.
 *
 * When nothing is pending, the Node timer is unref'd so it never keeps the
 * process alive, and it is re-ref'd as soon as something is scheduled again.
 */
import type { Timer } from './clock.js';

class QueuedTimer implements Timer {
  constructor(
    readonly queue: TimerQueue,
    readonly tick: number,
    readonly callback: () => void,
  ) {}
  cancel(): void {
    this.queue.remove(this);
  }
}

export class TimerQueue {
  private readonly buckets = new Map<number, Set<QueuedTimer>>();
  /** Min-heap of bucket ticks; may hold ticks whose bucket was emptied (skipped when popped). */
  private readonly heap: number[] = [];
  private handle: NodeJS.Timeout | undefined;
  private armedTick = Infinity;
  private refed = false;
  private count = 0;

  constructor(private readonly now: () => number) {}

  /** Number of callbacks waiting. */
  get size(): number {
    return this.count;
  }

  schedule(callback: () => void, delayMs: number): Timer {
    const tick = Math.ceil(this.now() + Math.max(0, delayMs));
    const timer = new QueuedTimer(this, tick, callback);
    let bucket = this.buckets.get(tick);
    if (bucket === undefined) {
      bucket = new Set();
      this.buckets.set(tick, bucket);
      push(this.heap, tick);
    }
    bucket.add(timer);
    this.count++;
    if (tick < this.armedTick) this.arm(tick);
    else if (!this.refed) {
      this.handle?.ref();
      this.refed = true;
    }
    return timer;
  }

  remove(timer: QueuedTimer): void {
    const bucket = this.buckets.get(timer.tick);
    if (bucket === undefined || !bucket.delete(timer)) return;
    this.count--;
    if (bucket.size === 0) this.buckets.delete(timer.tick);
    if (this.count === 0 && this.refed) {
      this.handle?.unref();
      this.refed = false;
    }
  }

  private arm(tick: number): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.armedTick = tick;
    this.handle = setTimeout(this.fire, Math.max(0, tick - this.now()));
    this.refed = true;
  }

  private readonly fire = (): void => {
    this.handle = undefined;
    this.armedTick = Infinity;
    this.refed = false;
    const now = this.now();
    const heap = this.heap;
    while (heap.length > 0 && (heap[0] as number) <= now) {
      const tick = pop(heap);
      const bucket = this.buckets.get(tick);
      if (bucket === undefined) continue;
      this.buckets.delete(tick);
      this.count -= bucket.size;
      for (const timer of bucket) timer.callback();
    }
    // Skip ticks whose buckets were emptied by cancellation.
    while (heap.length > 0 && !this.buckets.has(heap[0] as number)) pop(heap);
    const next = heap[0];
    if (next !== undefined) this.arm(next);
  };
}

function push(heap: number[], value: number): void {
  heap.push(value);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((heap[parent] as number) <= value) break;
    heap[i] = heap[parent] as number;
    i = parent;
  }
  heap[i] = value;
}

function pop(heap: number[]): number {
  const top = heap[0] as number;
  const last = heap.pop() as number;
  if (heap.length > 0) {
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (heap[r] as number) < (heap[l] as number) ? r : l;
      if ((heap[c] as number) >= last) break;
      heap[i] = heap[c] as number;
      i = c;
    }
    heap[i] = last;
  }
  return top;
}
