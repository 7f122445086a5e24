import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isProblemError, problem, ProblemError, problemTypes } from '../index.js';

describe('problem types', () => {
  it('the README registry lists every kit problem type with its status, code and retryability, and nothing else', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `([a-z-]+)` \| (\d{3}) \| `(BULWARK_HTTP_[A-Z_]+)` \| (yes|no) \|/gm)].map((m) => [m[1], Number(m[2]), m[3], m[4] === 'yes']);
    assert.deepEqual(
      rows,
      Object.entries(problemTypes).map(([slug, t]) => [slug, t.status, t.code, t.retryable]),
    );
  });

  it('ProblemError carries the registry figures and is recognised across copies by its brand', () => {
    const error = problem('idempotency-in-progress', 'busy', { headers: { 'retry-after': '1' } });
    assert.ok(error instanceof ProblemError && isProblemError(error));
    assert.deepEqual([error.status, error.code, error.retryable, error.type], [409, 'BULWARK_HTTP_IDEMPOTENCY_IN_PROGRESS', true, 'https://bulwark.dev/problems/idempotency-in-progress']);
    const foreign = Object.create({ [Symbol.for('bulwark.http.problem-error')]: true }) as object;
    assert.ok(foreign instanceof ProblemError, 'a ProblemError from another installed copy');
    const own = problem({ type: 'https://shop.example/problems/x', status: 418, title: 'Teapot', extensions: { status: 200, sku: 'A' } });
    assert.deepEqual(own.toProblem(), { sku: 'A', type: 'https://shop.example/problems/x', title: 'Teapot', status: 418 }, 'extensions never override standard members');
    assert.equal(own.retryable, false);
  });
});
