/**
 * Coalesced timers. Timers are kept in one FIFO list per whole-millisecond
 * delay: timers of equal delay fall due in the order they were set, so each
 * list stays sorted by itself, and setting or cancelling one is a linked-list
 * append or unlink, O(1) with no allocation beyond the timer. One Node timer
 * is armed for the earliest due time of all lists.
 *
 * That Node timer is not cleared when the queue empties, only unref'd: the
 * next call re-refs it instead of paying for a new `setTimeout`, and an idle
 * queue never keeps the process alive.
 *
 * Delays are rounded up to whole milliseconds, as Node's own timers are.
 */
import type { Timer } from './clock.js';

class QueuedTimer implements Timer {
  prev: QueuedTimer | undefined = undefined;
  next: QueuedTimer | undefined = undefined;
  list: TimerList | undefined;
  /** Set by `cancel()`: a timer already taken out of its list for firing must still not fire. */
  cancelled = false;

  constructor(
    readonly queue: TimerQueue,
    list: TimerList,
    readonly due: number,
    readonly callback: () => void,
  ) {
    this.list = list;
  }

  cancel(): void {
    this.cancelled = true;
    if (this.list !== undefined) this.queue.remove(this);
  }
}

class TimerList {
  head: QueuedTimer | undefined = undefined;
  tail: QueuedTimer | undefined = undefined;
}

export class TimerQueue {
  private readonly lists = new Map<number, TimerList>();
  private handle: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private refed = false;
  private count = 0;

  constructor(private readonly now: () => number) {}

  /** Number of callbacks waiting. */
  get size(): number {
    return this.count;
  }

  schedule(callback: () => void, delayMs: number): Timer {
    const delay = delayMs > 1 ? Math.ceil(delayMs) : 1;
    let list = this.lists.get(delay);
    if (list === undefined) {
      list = new TimerList();
      this.lists.set(delay, list);
    }
    const timer = new QueuedTimer(this, list, this.now() + delay, callback);
    if (list.tail === undefined) list.head = timer;
    else {
      list.tail.next = timer;
      timer.prev = list.tail;
    }
    list.tail = timer;
    this.count++;
    if (timer.due < this.armedAt) this.arm(timer.due);
    else if (!this.refed) {
      this.handle?.ref();
      this.refed = true;
    }
    return timer;
  }

  remove(timer: QueuedTimer): void {
    this.unlink(timer);
    if (--this.count === 0 && this.refed) {
      this.handle?.unref();
      this.refed = false;
    }
  }

  private unlink(timer: QueuedTimer): void {
    const list = timer.list as TimerList;
    if (timer.prev === undefined) list.head = timer.next;
    else timer.prev.next = timer.next;
    if (timer.next === undefined) list.tail = timer.prev;
    else timer.next.prev = timer.prev;
    timer.prev = timer.next = timer.list = undefined;
  }

  private arm(at: number): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.armedAt = at;
    this.handle = setTimeout(this.fire, Math.max(1, Math.ceil(at - this.now())));
    this.refed = true;
  }

  private readonly fire = (): void => {
    this.handle = undefined;
    this.armedAt = Infinity;
    this.refed = false;
    const now = this.now();
    const due: QueuedTimer[] = [];
    for (const [delay, list] of this.lists) {
      while (list.head !== undefined && list.head.due <= now) {
        const timer = list.head;
        this.unlink(timer);
        due.push(timer);
      }
      if (list.head === undefined) this.lists.delete(delay);
    }
    this.count -= due.length;
    // Fire in due order; callbacks may schedule or cancel timers, even ones of this batch.
    due.sort((a, b) => a.due - b.due);
    let failure: { error: unknown } | undefined;
    for (const timer of due) {
      if (timer.cancelled) continue;
      try {
        timer.callback();
      } catch (error) {
        // One throwing callback must not cost the rest of the batch; it surfaces after, as a timer's would.
        failure ??= { error };
      }
    }
    this.rearm();
    if (failure !== undefined) throw failure.error;
  };

  /** Arms the Node timer for the earliest head of all lists (callbacks may have armed it for a later one). */
  private rearm(): void {
    let next = Infinity;
    for (const list of this.lists.values()) {
      if (list.head !== undefined && list.head.due < next) next = list.head.due;
    }
    if (next !== Infinity && next !== this.armedAt) this.arm(next);
  }
}
