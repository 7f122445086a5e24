import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  currentDeadline,
  DEADLINE_HEADER,
  deadlineIn,
  incomingBudgetMs,
  outgoingDeadlineHeader,
  remainingBudgetMs,
} from './deadline-header.js';
import { retry } from './retry/retry-policy.js';
import { VirtualClock } from './testing/index.js';
import { deadline, timeout } from './timeout.js';

describe('deadline header', () => {
  it('is a lower-case header name', () => {
    assert.equal(DEADLINE_HEADER, 'bulwark-deadline-ms');
    assert.equal(DEADLINE_HEADER, DEADLINE_HEADER.toLowerCase());
  });

  describe('outgoingDeadlineHeader', () => {
    it('writes a remaining budget as whole milliseconds, rounded down', () => {
      assert.equal(outgoingDeadlineHeader(1_500), '1500');
      assert.equal(outgoingDeadlineHeader(12.9), '12');
      assert.equal(outgoingDeadlineHeader(0.4), '0');
      assert.equal(outgoingDeadlineHeader(0), '0');
    });

    it('never writes a negative budget', () => {
      assert.equal(outgoingDeadlineHeader(-3), '0');
      assert.equal(outgoingDeadlineHeader(-0.5), '0');
    });

    it('writes nothing for an unbounded budget', () => {
      assert.equal(outgoingDeadlineHeader(Infinity), undefined);
    });

    it('writes nothing outside any deadline', () => {
      assert.equal(outgoingDeadlineHeader(), undefined);
    });

    it('writes the ambient remaining budget inside a deadline, as it shrinks', async () => {
      const clock = new VirtualClock(10_000);
      const seen: (string | undefined)[] = [];
      const result = deadline(1_000, { clock }).execute(async () => {
        seen.push(outgoingDeadlineHeader());
        await new Promise<void>((resolve) => clock.setTimer(resolve, 250.7));
        seen.push(outgoingDeadlineHeader());
        return 'ok';
      });
      await clock.runAll();
      assert.equal(await result, 'ok');
      assert.deepEqual(seen, ['1000', '749']);
    });

    it('round-trips through incomingBudgetMs, the margin kept back', () => {
      const header = outgoingDeadlineHeader(800);
      assert.equal(incomingBudgetMs(header, { marginMs: 20 }), 780);
      assert.equal(incomingBudgetMs(outgoingDeadlineHeader(Infinity), { maxMs: 5_000 }), 5_000);
    });
  });

  describe('incomingBudgetMs', () => {
    it('subtracts a default margin of 5 ms', () => {
      assert.equal(incomingBudgetMs('1000'), 995);
    });

    it('subtracts the configured margin', () => {
      assert.equal(incomingBudgetMs('1000', { marginMs: 50 }), 950);
      assert.equal(incomingBudgetMs('1000', { marginMs: 0 }), 1_000);
    });

    it('caps the budget at maxMs: a caller cannot lift the server ceiling', () => {
      assert.equal(incomingBudgetMs('60000', { maxMs: 2_000 }), 2_000);
      assert.equal(incomingBudgetMs('1000', { maxMs: 2_000 }), 995);
      assert.equal(incomingBudgetMs('2005', { maxMs: 2_000 }), 2_000);
    });

    it('yields maxMs for a missing header (unbounded by default)', () => {
      assert.equal(incomingBudgetMs(undefined, { maxMs: 3_000 }), 3_000);
      assert.equal(incomingBudgetMs(undefined), Infinity);
      assert.equal(incomingBudgetMs([], { maxMs: 3_000 }), 3_000);
    });

    it('yields maxMs for a malformed header: garbage is not trusted', () => {
      const malformed = ['', ' ', 'abc', '-5', '+5', '1.5', '1e3', '0x10', '10ms', '1 000', 'Infinity', 'NaN', '1234567890123456'];
      for (const value of malformed) {
        assert.equal(incomingBudgetMs(value, { maxMs: 7_000 }), 7_000, JSON.stringify(value));
        assert.equal(incomingBudgetMs(value), Infinity, JSON.stringify(value));
      }
    });

    it('accepts surrounding whitespace', () => {
      assert.equal(incomingBudgetMs(' 100 ', { marginMs: 0 }), 100);
      assert.equal(incomingBudgetMs('\t100\n', { marginMs: 0 }), 100);
    });

    it('accepts the largest well-formed value', () => {
      assert.equal(incomingBudgetMs('999999999999999', { marginMs: 0 }), 999_999_999_999_999);
      assert.equal(incomingBudgetMs('999999999999999', { maxMs: 10_000 }), 10_000);
    });

    it('reads the first of repeated header values', () => {
      assert.equal(incomingBudgetMs(['300', '9000'], { marginMs: 0 }), 300);
      assert.equal(incomingBudgetMs(['junk', '9000'], { maxMs: 1_000 }), 1_000);
    });

    it('yields 0 for a spent budget, never a negative one', () => {
      assert.equal(incomingBudgetMs('0'), 0);
      assert.equal(incomingBudgetMs('3'), 0);
      assert.equal(incomingBudgetMs('5'), 0);
      assert.equal(incomingBudgetMs('6'), 1);
      assert.equal(incomingBudgetMs('10', { marginMs: 100, maxMs: 50 }), 0);
    });
  });

  describe('remainingBudgetMs and currentDeadline', () => {
    it('are unbounded outside any policy', () => {
      assert.equal(remainingBudgetMs(), Infinity);
      assert.equal(currentDeadline(), undefined);
    });

    it('read the ambient deadline inside a deadline policy, on its clock', async () => {
      const clock = new VirtualClock(1_000);
      const seen: [number, number | undefined][] = [];
      const result = deadline(500, { clock }).execute(async () => {
        seen.push([remainingBudgetMs(), currentDeadline()]);
        await new Promise<void>((resolve) => clock.setTimer(resolve, 200));
        seen.push([remainingBudgetMs(), currentDeadline()]);
      });
      await clock.runAll();
      await result;
      assert.deepEqual(seen, [
        [500, 1_500],
        [300, 1_500],
      ]);
      // Once the call is over, nothing is ambient any more.
      assert.equal(remainingBudgetMs(), Infinity);
      assert.equal(currentDeadline(), undefined);
    });

    it('see the narrower of nested deadlines', async () => {
      const clock = new VirtualClock();
      const seen: number[] = [];
      await deadline(1_000, { clock }).execute(async () => {
        seen.push(remainingBudgetMs());
        await timeout(200, { clock }).execute(() => seen.push(remainingBudgetMs()));
        await deadline(5_000, { clock }).execute(() => seen.push(remainingBudgetMs()));
        seen.push(remainingBudgetMs());
      });
      assert.deepEqual(seen, [1_000, 200, 1_000, 1_000]);
    });

    it('reach 0, never below, once the budget is spent', async () => {
      const clock = new VirtualClock();
      let remaining = -1;
      let header: string | undefined;
      const result = deadline(100, { clock }).execute(async () => {
        await new Promise<void>((resolve) => clock.setTimer(resolve, 150));
        remaining = remainingBudgetMs();
        header = outgoingDeadlineHeader();
      });
      const outcome = assert.rejects(result);
      await clock.runAll();
      await outcome;
      assert.equal(remaining, 0);
      assert.equal(header, '0');
    });

    it('are unbounded inside a policy that sets no deadline', async () => {
      const clock = new VirtualClock();
      let seen: [number, number | undefined] | undefined;
      await retry({ clock }).execute(() => (seen = [remainingBudgetMs(), currentDeadline()]));
      assert.deepEqual(seen, [Infinity, undefined]);
    });

    it('are not made ambient by a deadline with propagate: false', async () => {
      const clock = new VirtualClock();
      let seen: [number, number | undefined] | undefined;
      await deadline(100, { clock, propagate: false }).execute(() => (seen = [remainingBudgetMs(), currentDeadline()]));
      assert.deepEqual(seen, [Infinity, undefined]);
    });
  });

  describe('deadlineIn', () => {
    it('turns a budget into an absolute time on the clock', () => {
      const clock = new VirtualClock(2_000);
      assert.equal(deadlineIn(300, clock), 2_300);
      assert.equal(deadlineIn(0, clock), 2_000);
      assert.equal(deadlineIn(Infinity, clock), Infinity);
    });
  });
});
