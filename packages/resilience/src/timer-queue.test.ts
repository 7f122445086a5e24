/**
 * The timer queue on the real clock. Nothing here asserts how long anything
 * took: only which timers fire, in which order, and what is left pending.
 * Orders are asserted only where they are decided by the queue, not by how
 * fast this test happens to run.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { systemClock, type Timer } from './clock.js';
import { TimerQueue } from './timer-queue.js';

interface Scheduled {
  label: string;
  delay: number;
  /** Bounds of the due time the queue computed: it read the clock between these two readings. */
  earliest: number;
  latest: number;
  seq: number;
}

/** Schedules timers on `systemClock`, recording what fires and in which order. */
function recorder() {
  const fired: string[] = [];
  const scheduled: Scheduled[] = [];
  let seq = 0;
  const schedule = (label: string, delay: number, then?: () => void): Timer => {
    const before = performance.now();
    const timer = systemClock.setTimer(() => {
      fired.push(label);
      then?.();
    }, delay);
    const after = performance.now();
    const whole = delay > 1 ? Math.ceil(delay) : 1;
    scheduled.push({ label, delay, earliest: before + whole, latest: after + whole, seq: seq++ });
    return timer;
  };
  /** Resolves when a timer set now with `delay` fires. */
  const sentinel = (delay: number): Promise<void> => new Promise((resolve) => schedule(`sentinel ${delay}`, delay, resolve));
  return { fired, scheduled, schedule, sentinel };
}

/** Blocks the event loop until `performance.now()` passes `time`, so every timer due by then fires in one batch. */
function spinUntil(time: number): void {
  let spins = 0;
  while (performance.now() <= time) spins++;
  assert.ok(spins >= 0);
}

/**
 * Checks `fired` against the order the queue must keep: a timer whose due
 * time is certainly earlier fires first, and timers of equal delay fire in
 * the order they were set.
 */
function assertDueOrder(fired: readonly string[], scheduled: readonly Scheduled[]): void {
  const position = new Map(fired.map((label, i) => [label, i]));
  for (const a of scheduled) {
    for (const b of scheduled) {
      const certainlyFirst = a.latest < b.earliest || (a.delay === b.delay && a.seq < b.seq);
      if (!certainlyFirst) continue;
      const pa = position.get(a.label);
      const pb = position.get(b.label);
      assert.ok(pa !== undefined && pb !== undefined, `${a.label} and ${b.label} should both have fired`);
      assert.ok(pa < pb, `${a.label} (due ${a.latest.toFixed(3)}) should fire before ${b.label} (due ${b.earliest.toFixed(3)}); fired: ${fired.join(', ')}`);
    }
  }
}

describe('TimerQueue on the system clock', () => {
  it('fires every timer once and returns pendingTimers to 0', async () => {
    assert.equal(systemClock.pendingTimers(), 0);
    const r = recorder();
    r.schedule('a', 3);
    r.schedule('b', 1);
    r.schedule('c', 0);
    r.schedule('d', 2.5);
    const done = r.sentinel(15);
    assert.equal(systemClock.pendingTimers(), 5);
    await done;
    assert.deepEqual([...r.fired].sort(), ['a', 'b', 'c', 'd', 'sentinel 15']);
    assert.equal(systemClock.pendingTimers(), 0);
  });

  it('fires in due order for mixed delays', async () => {
    const r = recorder();
    const delays = [40, 5, 25, 1, 15, 5, 0, 30, 10, 1, 40, 20];
    delays.forEach((delay, i) => r.schedule(`t${i}:${delay}ms`, delay));
    await r.sentinel(60);
    assert.equal(r.fired.length, delays.length + 1);
    assertDueOrder(r.fired, r.scheduled);
    assert.equal(systemClock.pendingTimers(), 0);
  });

  it('fires timers of equal delay in the order they were set', async () => {
    const r = recorder();
    const labels = Array.from({ length: 50 }, (_, i) => `same ${i}`);
    for (const label of labels) r.schedule(label, 3);
    await r.sentinel(20);
    assert.deepEqual(r.fired.slice(0, 50), labels);
  });

  it('fires a shorter timer set after a longer one first', async () => {
    const r = recorder();
    r.schedule('long', 200);
    r.schedule('short', 1);
    await new Promise<void>((resolve) => r.schedule('after short', 2, resolve));
    assert.deepEqual(r.fired.slice(0, 2), ['short', 'after short']);
    // Re-arming for the short one did not lose the long one.
    await r.sentinel(210);
    assert.deepEqual(r.fired, ['short', 'after short', 'long', 'sentinel 210']);
    assertDueOrder(r.fired, r.scheduled);
    assert.equal(systemClock.pendingTimers(), 0);
  });

  it('never fires a cancelled timer, and cancel is idempotent', async () => {
    const r = recorder();
    const a = r.schedule('a', 1);
    r.schedule('b', 2);
    const c = r.schedule('c', 2);
    const d = r.schedule('d', 30);
    r.schedule('e', 5);
    a.cancel();
    c.cancel();
    c.cancel();
    d.cancel();
    assert.equal(systemClock.pendingTimers(), 2);
    await r.sentinel(40);
    assert.deepEqual(r.fired, ['b', 'e', 'sentinel 40']);
    a.cancel(); // after the fact: nothing to do
    assert.equal(systemClock.pendingTimers(), 0);
  });

  it('never fires a timer cancelled by an earlier callback of the same batch', async () => {
    const r = recorder();
    r.schedule('first', 1, () => second.cancel());
    const second = r.schedule('second', 2);
    r.schedule('third', 2);
    // Hold the event loop until all three are due, so one wake-up fires them together.
    spinUntil(Math.max(...r.scheduled.map((s) => s.latest)) + 1);
    await r.sentinel(20);
    assert.deepEqual(r.fired, ['first', 'third', 'sentinel 20']);
    assert.equal(systemClock.pendingTimers(), 0);
  });

  it('keeps its count right when a callback cancels timers of the same batch', async () => {
    const r = recorder();
    const victims: Timer[] = [];
    let pendingSeenInBatch = -1;
    r.schedule('canceller', 1, () => victims.forEach((t) => t.cancel()));
    for (let i = 0; i < 5; i++) victims.push(r.schedule(`victim ${i}`, 2));
    r.schedule('observer', 3, () => (pendingSeenInBatch = systemClock.pendingTimers()));
    spinUntil(Math.max(...r.scheduled.map((s) => s.latest)) + 1);
    await r.sentinel(20);
    assert.deepEqual(r.fired, ['canceller', 'observer', 'sentinel 20']);
    // Only the sentinel was still waiting while the batch fired; nothing was counted twice.
    assert.equal(pendingSeenInBatch, 1);
    assert.equal(systemClock.pendingTimers(), 0);
    r.schedule('one more', 1);
    assert.equal(systemClock.pendingTimers(), 1);
    await r.sentinel(5);
    assert.equal(systemClock.pendingTimers(), 0);
  });

  it('fires timers set from inside a callback, shorter and longer ones alike', async () => {
    const r = recorder();
    const done = new Promise<void>((resolve) => {
      r.schedule('outer', 2, () => {
        r.schedule('inner long', 8, () => {
          r.schedule('innermost', 0, resolve);
        });
        r.schedule('inner short', 1);
        r.schedule('inner zero', 0);
      });
      r.schedule('sibling', 40);
    });
    await done;
    await r.sentinel(60);
    assert.deepEqual([...r.fired].sort(), ['inner long', 'inner short', 'inner zero', 'innermost', 'outer', 'sentinel 60', 'sibling']);
    assert.equal(r.fired[0], 'outer');
    assert.ok(r.fired.indexOf('inner short') < r.fired.indexOf('inner zero'));
    assert.ok(r.fired.indexOf('inner zero') < r.fired.indexOf('inner long'));
    assert.ok(r.fired.indexOf('inner long') < r.fired.indexOf('innermost'));
    assertDueOrder(r.fired, r.scheduled);
    assert.equal(systemClock.pendingTimers(), 0);
  });

  it('keeps working after the queue went idle', async () => {
    for (let round = 0; round < 3; round++) {
      const r = recorder();
      r.schedule('x', 1).cancel();
      assert.equal(systemClock.pendingTimers(), 0);
      await r.sentinel(2);
      assert.deepEqual(r.fired, ['sentinel 2']);
    }
  });

  it('counts every waiting timer in size', async () => {
    const queue = new TimerQueue(() => performance.now());
    const timers = [queue.schedule(() => {}, 5), queue.schedule(() => {}, 5), queue.schedule(() => {}, 50)];
    assert.equal(queue.size, 3);
    timers[2]!.cancel();
    assert.equal(queue.size, 2);
    await new Promise<void>((resolve) => queue.schedule(resolve, 10));
    assert.equal(queue.size, 0);
  });

  it('does not keep the process alive once idle, but does while a timer waits', async () => {
    const clockModule = fileURLToPath(new URL('./clock.ts', import.meta.url));
    const run = (script: string): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', `import { systemClock } from ${JSON.stringify(clockModule)};\n${script}`],
          { timeout: 60_000 },
          (error, stdout) => (error === null ? resolve(stdout) : reject(new Error(`child failed: ${error.message}`, { cause: error }))),
        );
      });
    // A cancelled hour-long timer must not hold the process for an hour (the child is killed, and this fails, long before).
    assert.equal(await run("systemClock.setTimer(() => console.log('fired'), 3_600_000).cancel(); console.log('idle');"), 'idle\n');
    assert.equal(await run("systemClock.setTimer(() => console.log('fired'), 20);"), 'fired\n');
  });
});
