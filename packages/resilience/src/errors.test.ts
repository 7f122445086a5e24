import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bulkhead } from './bulkhead.js';
import * as errors from './errors.js';
import {
  BulkheadRejectedError,
  BulwarkError,
  CircuitOpenError,
  DeadlineExceededError,
  errorCodes,
  fastError,
  HedgeLostError,
  InvalidOptionError,
  isBulwarkError,
  RateLimitedError,
  TimeoutError,
  type ErrorCode,
} from './errors.js';
import { timeout } from './timeout.js';

type ErrorsModule = typeof errors;

/**
 * A second instance of this module, as a second installed copy of the
 * package would load: same source, distinct classes. The query string makes
 * the loader treat it as a different module.
 */
async function secondCopy(): Promise<ErrorsModule> {
  const url = new URL('./errors.ts?copy=1', import.meta.url).href;
  return (await import(url)) as ErrorsModule;
}

/** One instance of every concrete error class, built by `m`. */
function samples(m: ErrorsModule): Record<ErrorCode, errors.BulwarkError> {
  return {
    BULWARK_INVALID_OPTION: new m.InvalidOptionError('retry', 'maxAttempts', 0, 'an integer >= 1'),
    BULWARK_TIMEOUT: new m.TimeoutError(100, 'timeout'),
    BULWARK_DEADLINE_EXCEEDED: new m.DeadlineExceededError('deadline'),
    BULWARK_CIRCUIT_OPEN: new m.CircuitOpenError('db', false, 1_000),
    BULWARK_BULKHEAD_REJECTED: new m.BulkheadRejectedError('pool', 'full'),
    BULWARK_RATE_LIMITED: new m.RateLimitedError('api', 250),
    BULWARK_HEDGE_LOST: new m.HedgeLostError(),
  };
}

function classes(m: ErrorsModule): Record<ErrorCode, abstract new (...args: never[]) => errors.BulwarkError> {
  return {
    BULWARK_INVALID_OPTION: m.InvalidOptionError,
    BULWARK_TIMEOUT: m.TimeoutError,
    BULWARK_DEADLINE_EXCEEDED: m.DeadlineExceededError,
    BULWARK_CIRCUIT_OPEN: m.CircuitOpenError,
    BULWARK_BULKHEAD_REJECTED: m.BulkheadRejectedError,
    BULWARK_RATE_LIMITED: m.RateLimitedError,
    BULWARK_HEDGE_LOST: m.HedgeLostError,
  };
}

const codes = Object.keys(errorCodes) as ErrorCode[];

describe('errors', () => {
  it('loads a genuinely distinct second copy of the module', async () => {
    const copy = await secondCopy();
    assert.notEqual(copy.TimeoutError, TimeoutError);
    assert.notEqual(copy.BulwarkError, BulwarkError);
    assert.notEqual(copy.BulwarkError.prototype, BulwarkError.prototype);
  });

  describe('instanceof across two copies of the package', () => {
    it('an error from the other copy is an instance of the matching class here, and the other way round', async () => {
      const copy = await secondCopy();
      const theirs = samples(copy);
      const ours = samples(errors);
      const ourClasses = classes(errors);
      const theirClasses = classes(copy);
      for (const code of codes) {
        assert.ok(theirs[code] instanceof ourClasses[code], `${code}: theirs instanceof ours`);
        assert.ok(ours[code] instanceof theirClasses[code], `${code}: ours instanceof theirs`);
        assert.ok(theirs[code] instanceof BulwarkError, `${code}: theirs instanceof our BulwarkError`);
        assert.ok(ours[code] instanceof copy.BulwarkError, `${code}: ours instanceof their BulwarkError`);
        assert.ok(theirs[code] instanceof Error);
      }
    });

    it('a class from either copy still refuses the other classes of the other copy', async () => {
      const copy = await secondCopy();
      const theirs = samples(copy);
      const ourClasses = classes(errors);
      for (const code of codes) {
        for (const other of codes) {
          if (other === code) continue;
          assert.ok(!(theirs[code] instanceof ourClasses[other]), `their ${code} must not be our ${other}`);
        }
      }
    });

    it('isBulwarkError recognises errors from the other copy, and its own in the other copy', async () => {
      const copy = await secondCopy();
      assert.ok(isBulwarkError(new copy.TimeoutError(1)));
      assert.ok(copy.isBulwarkError(new TimeoutError(1)));
    });

    it('catch by class works for an error thrown by the other copy', async () => {
      const copy = await secondCopy();
      const fail = (): never => {
        throw new copy.CircuitOpenError('payments', true, undefined);
      };
      try {
        fail();
        assert.fail('should have thrown');
      } catch (error) {
        assert.ok(error instanceof CircuitOpenError);
        assert.equal(error.breaker, 'payments');
        assert.equal(error.isolated, true);
      }
    });
  });

  it('is decided by the shared brand and the code: an object carrying them passes, one without the brand does not', () => {
    const branded = Object.create(null) as Record<string | symbol, unknown>;
    branded[Symbol.for('bulwark.error')] = true;
    branded.code = 'BULWARK_TIMEOUT';
    assert.ok(isBulwarkError(branded));
    assert.ok(branded instanceof TimeoutError);
    assert.ok(branded instanceof BulwarkError);
    assert.ok(!(branded instanceof DeadlineExceededError));

    const lookalike = Object.assign(new Error('fake'), { code: 'BULWARK_TIMEOUT', retryable: true });
    assert.ok(!isBulwarkError(lookalike));
    assert.ok(!((lookalike as unknown) instanceof TimeoutError));
    assert.ok(!((lookalike as unknown) instanceof BulwarkError));

    const wrongBrand = { [Symbol('bulwark.error')]: true, code: 'BULWARK_TIMEOUT' };
    assert.ok(!isBulwarkError(wrongBrand));
    assert.ok(!isBulwarkError({ 'bulwark.error': true, code: 'BULWARK_TIMEOUT' }));
    assert.ok(!isBulwarkError({ [Symbol.for('bulwark.error')]: 'yes' }));
  });

  it('subclasses do not match each other', () => {
    const all = samples(errors);
    const allClasses = classes(errors);
    for (const code of codes) {
      assert.ok(all[code] instanceof allClasses[code], code);
      assert.ok(all[code] instanceof BulwarkError, code);
      assert.ok(all[code] instanceof Error, code);
      for (const other of codes) {
        if (other !== code) assert.ok(!(all[code] instanceof allClasses[other]), `${code} must not be ${other}`);
      }
    }
  });

  it('instanceof refuses non-errors without throwing', () => {
    for (const value of [undefined, null, 0, 'BULWARK_TIMEOUT', true, Symbol('x'), {}, [], () => {}, new Error('plain')]) {
      assert.ok(!(value instanceof BulwarkError));
      assert.ok(!(value instanceof TimeoutError));
      assert.equal(isBulwarkError(value), false);
    }
  });

  it('isBulwarkError is true for every error class and for fast errors', () => {
    for (const error of Object.values(samples(errors))) assert.equal(isBulwarkError(error), true, error.name);
    const fast = fastError(BulkheadRejectedError, 'BULWARK_BULKHEAD_REJECTED', 'bulkhead "x" rejected the call (full)', { bulkhead: 'x', reason: 'full' });
    assert.equal(isBulwarkError(fast), true);
  });

  it('gives each error the retryable flag of its code', () => {
    const all = samples(errors);
    for (const code of codes) {
      assert.equal(all[code].code, code);
      assert.equal(all[code].retryable, errorCodes[code].retryable, code);
    }
    assert.equal(new TimeoutError(1).retryable, true);
    assert.equal(new RateLimitedError('api', 1).retryable, true);
    assert.equal(new DeadlineExceededError().retryable, false);
    assert.equal(new CircuitOpenError('db', false, undefined).retryable, false);
    assert.equal(new BulkheadRejectedError('pool', 'queue-timeout').retryable, false);
    assert.equal(new InvalidOptionError('p', 'o', 1, 'x').retryable, false);
    assert.equal(new HedgeLostError().retryable, false);
  });

  it('sets name to the class name and the static code on each class', () => {
    const all = samples(errors);
    const allClasses = classes(errors);
    for (const code of codes) {
      assert.equal(all[code].name, allClasses[code].name);
      assert.equal((allClasses[code] as unknown as { code: string }).code, code);
    }
    assert.equal(BulwarkError.code, undefined);
  });

  it('documents every code with an HTTP status and a description', () => {
    for (const code of codes) {
      const { status, description } = errorCodes[code];
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, code);
      assert.ok(description.length > 0, code);
    }
  });

  it('keeps the fields of each error', () => {
    const timeout = new TimeoutError(250, 'db-timeout');
    assert.equal(timeout.timeoutMs, 250);
    assert.equal(timeout.message, 'db-timeout: attempt timed out after 250 ms');
    assert.equal(new DeadlineExceededError().message, 'deadline: deadline exceeded');
    const open = new CircuitOpenError('db', false, 1_500);
    assert.equal(open.retryAfterMs, 1_500);
    assert.equal(open.message, 'circuit breaker "db" is open');
    assert.equal(new CircuitOpenError('db', true, undefined).message, 'circuit breaker "db" is isolated');
    const limited = new RateLimitedError('api', 300);
    assert.equal(limited.limiter, 'api');
    assert.equal(limited.retryAfterMs, 300);
    const rejected = new BulkheadRejectedError('pool', 'queue-timeout');
    assert.equal(rejected.bulkhead, 'pool');
    assert.equal(rejected.reason, 'queue-timeout');
  });

  it('keeps a cause', () => {
    const cause = new Error('root');
    const error = new BulwarkError('BULWARK_TIMEOUT', 'wrapped', { cause });
    assert.equal(error.cause, cause);
    assert.ok(error instanceof TimeoutError); // decided by the code
    assert.equal(new BulwarkError('BULWARK_TIMEOUT', 'no cause').cause, undefined);
  });

  it('builds fast errors that behave like constructed ones', () => {
    const fast = fastError(RateLimitedError, 'BULWARK_RATE_LIMITED', 'rate limiter "api" refused the call; retry after 5 ms', { limiter: 'api', retryAfterMs: 5 });
    assert.ok(fast instanceof RateLimitedError);
    assert.ok(fast instanceof BulwarkError);
    assert.ok(fast instanceof Error);
    assert.ok(!(fast instanceof TimeoutError));
    assert.equal(fast.name, 'RateLimitedError');
    assert.equal(fast.code, 'BULWARK_RATE_LIMITED');
    assert.equal(fast.retryable, true);
    assert.equal(fast.limiter, 'api');
    assert.equal(fast.retryAfterMs, 5);
    assert.equal(fast.stack, `RateLimitedError: ${fast.message}`);
  });

  it('does not leave Error.stackTraceLimit changed by a stackless error', () => {
    const before = Error.stackTraceLimit;
    void new TimeoutError(1);
    void new DeadlineExceededError();
    assert.equal(Error.stackTraceLimit, before);
    assert.ok((new InvalidOptionError('p', 'o', 1, 'x').stack ?? '').includes('errors.test.ts'));
  });

  describe('InvalidOptionError', () => {
    it('names the policy, the option, what was expected and the value in its message', () => {
      const error = new InvalidOptionError('retry', 'maxAttempts', 0, 'an integer >= 1');
      assert.equal(error.message, 'retry: option "maxAttempts" must be an integer >= 1, got 0');
      assert.equal(error.option, 'maxAttempts');
      assert.equal(error.value, 0);
      assert.equal(error.code, 'BULWARK_INVALID_OPTION');
    });

    it('describes values of every kind readably', () => {
      const got = (value: unknown): string => new InvalidOptionError('p', 'o', value, 'x').message.replace('p: option "o" must be x, got ', '');
      assert.equal(got('fast'), '"fast"');
      assert.equal(got(-1.5), '-1.5');
      assert.equal(got(Number.NaN), 'NaN');
      assert.equal(got(Infinity), 'Infinity');
      assert.equal(got(undefined), 'undefined');
      assert.equal(got(null), 'null');
      assert.equal(got(false), 'false');
      assert.equal(got(() => 1), 'a function');
      assert.equal(got({ baseMs: 1 }), '{"baseMs":1}');
      assert.equal(got([1, 2]), '[1,2]');
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      assert.equal(got(circular), '[object Object]');
      assert.equal(got(10n), '10');
      assert.equal(got(Symbol('s')), 'Symbol(s)');
    });

    it('is what the policies throw, naming policy, option and value', () => {
      assert.throws(() => timeout(-5), (e: unknown) => e instanceof InvalidOptionError && /^timeout: option "timeoutMs" .* got -5$/.test(e.message));
      assert.throws(() => bulkhead({ maxConcurrent: 0, name: 'pool' }), (e: unknown) => e instanceof InvalidOptionError && /^bulkhead: option "maxConcurrent" .* got 0$/.test(e.message));
    });
  });
});

describe('user subclasses of Bulwark errors', () => {
  it('are judged by their own prototype chain, not by the code they inherit', () => {
    class UpstreamTimeout extends TimeoutError {}
    const mine = new UpstreamTimeout(10);
    const plain = new TimeoutError(10);
    assert.ok(mine instanceof UpstreamTimeout);
    assert.ok(mine instanceof TimeoutError);
    assert.ok(!(plain instanceof UpstreamTimeout));
  });
});
