import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isBulwarkError, isTransient } from '@bulwark/resilience';
import type * as errors from './errors.js';
import { InvalidRecordError, SloError, SloNotFoundError, SloSpecError, WebhookFailedError, WebhookRejectedError, isSloError, isSloSpecError, sloErrorCodes } from './errors.js';

describe('SLO errors', () => {
  const samples = [
    new SloSpecError([{ path: 'slos[0].objective', message: 'bad' }]),
    new SloNotFoundError('x'),
    new InvalidRecordError('x', 'bad'),
    new WebhookFailedError('http://h/', 503, 'answered 503'),
    new WebhookRejectedError('http://h/', 400),
  ];

  it('carry their registered code and retryability, and are Bulwark errors resilience can classify', () => {
    assert.deepEqual(samples.map((e) => e.code).sort(), Object.keys(sloErrorCodes).sort());
    for (const e of samples) {
      assert.equal(e.retryable, sloErrorCodes[e.code].retryable);
      assert.ok(isSloError(e) && isBulwarkError(e) && e instanceof SloError);
      assert.equal(isTransient(e), e.retryable, `${e.code}: the retry policy reads retryable`);
    }
  });

  it('keep their identity across a second installed copy of the module', async () => {
    const copy = (await import(new URL('./errors.ts?copy=1', import.meta.url).href)) as typeof errors;
    const foreign = new copy.SloSpecError([{ path: 'slos[1].name', message: 'duplicate' }]);
    assert.notEqual(copy.SloSpecError, SloSpecError);
    assert.ok(foreign instanceof SloSpecError);
    assert.ok(isSloSpecError(foreign));
    assert.ok(!(foreign instanceof SloNotFoundError));
    assert.equal(foreign.path, 'slos[1].name');
    assert.match(foreign.message, /^slos\[1\]\.name: duplicate$/);
  });
});
