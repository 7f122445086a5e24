import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { createService } from '../index.js';

describe('graceful shutdown (in process)', () => {
  it('turns readiness 503 as soon as draining starts, finishes in-flight requests, then runs closers in reverse order', async () => {
    const exits: number[] = [];
    const app = await createService({ kit: { openapi: false, shutdown: { signals: [], exit: (code) => void exits.push(code) } } });
    const events: string[] = [];
    let finish: () => void = () => undefined;
    app.get('/slow', async () => {
      events.push('slow started');
      await new Promise<void>((resolve) => (finish = resolve));
      events.push('slow finished');
      return { ok: true };
    });
    app.shutdown.addCloser('pool', () => void events.push('closed pool'));
    app.shutdown.addCloser('consumer', async () => void events.push('closed consumer'));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address() as { port: number };
    const slow = request(`http://127.0.0.1:${address.port}/slow`);
    while (!events.includes('slow started')) await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await app.readiness.run()).ready, true);
    const done = app.shutdown.begin('test');
    assert.equal(app.shutdown.draining, true);
    const report = await app.readiness.run();
    assert.deepEqual([report.ready, report.draining], [false, true]);
    assert.deepEqual(events, ['slow started'], 'nothing closed while a request is in flight');
    finish();
    const res = await slow;
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(await done, 0);
    assert.deepEqual(events, ['slow started', 'slow finished', 'closed consumer', 'closed pool']);
    assert.equal(app.shutdown.begin() === done, true, 'begin is idempotent');
    assert.deepEqual(exits, [], 'only a signal exits the process');
  });

  it('a failing closer does not stop the others, and makes the exit code 1', async () => {
    const app = await createService({ kit: { openapi: false, shutdown: { signals: [] } } });
    const closed: string[] = [];
    app.shutdown.addCloser('a', () => void closed.push('a'));
    app.shutdown.addCloser('b', () => {
      throw new Error('b failed');
    });
    app.shutdown.addCloser('c', () => void closed.push('c'));
    await app.ready();
    assert.equal(await app.shutdown.begin(), 1);
    assert.deepEqual(closed, ['c', 'a']);
  });
});
