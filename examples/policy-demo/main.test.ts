// Runs the `npm start` demonstration as a user would and checks what it reports.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

describe('npm start (policy demo)', () => {
  it('runs every section against the flaky server and reports what the policies did', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', 'examples/policy-demo/main.ts'], {
      cwd: new URL('../..', import.meta.url).pathname,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const out = run.stdout;
    for (const heading of ['1. retry', '2. timeout', '3. circuit breaker', '4. bulkhead and fallback', '5. deadline propagation']) {
      assert.ok(out.includes(heading), `missing section "${heading}"`);
    }
    assert.match(out, /full outage, every request fails: 100 calls -> 0 succeeded, 100 failed/);
    const perCall = Number(/full outage.*; ([\d.]+) requests per call/.exec(out)?.[1]);
    assert.ok(perCall < 2, `the retry budget keeps an outage below 2 requests per call (saw ${perCall})`);
    assert.match(out, /transitions: closed -> open, open -> half-open, half-open -> closed/);
    assert.match(out, /failed fast without a request/);
    assert.match(out, /the slow dependency saw at most 5 requests at once/);
    const told = Number(/the server was told it had (\d+) ms/.exec(out)?.[1]);
    assert.ok(told > 0 && told <= 795, `the server received the caller's budget less its margin (saw ${told})`);
  });
});
