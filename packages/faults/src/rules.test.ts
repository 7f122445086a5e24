import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  FaultConfigError,
  FaultError,
  isFaultError,
  matchesRoute,
  parseRoutePattern,
  readFaultFile,
  splitPath,
  UnknownFaultRuleError,
  validateFaultRule,
  validateFaultSet,
} from './index.js';

/** Asserts `fn` throws a FaultConfigError naming `field` (and, when given, `file`). */
function refuses(fn: () => unknown, field: string, file?: string): FaultConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FaultConfigError, `expected a FaultConfigError naming ${field}, got ${String(caught)}`);
  assert.equal(caught.field, field, caught.message);
  assert.ok(caught.message.includes(field), caught.message);
  assert.equal(caught.code, 'BULWARK_FAULT_INVALID_RULE');
  assert.equal(caught.retryable, false);
  if (file !== undefined) {
    assert.equal(caught.file, file);
    assert.ok(caught.message.includes(file), caught.message);
  }
  return caught;
}

const base = { kind: 'error', direction: 'inbound' } as const;

describe('fault rule validation', () => {
  it('normalises a rule: defaults filled in, fields in a stable order', () => {
    assert.deepEqual(validateFaultRule({ id: 'x', ...base }), { id: 'x', kind: 'error', direction: 'inbound', match: {}, probability: 1, status: 503 });
    assert.deepEqual(validateFaultRule({ kind: 'crash', direction: 'outbound', match: { module: 'orders', dependency: 'payments' } }, { id: 'c' }), {
      id: 'c',
      kind: 'crash',
      direction: 'outbound',
      match: { module: 'orders', dependency: 'payments' },
      probability: 1,
      signal: 'SIGKILL',
    });
    const partition = validateFaultRule({ id: 'p', kind: 'partition', match: { module: 'payments' }, hangMs: 500 });
    assert.equal(partition.direction, undefined, 'a partition without direction applies to both');
    for (const latency of [
      { fixedMs: 0 },
      { distribution: 'uniform', minMs: 10, maxMs: 10 },
      { distribution: 'exponential', meanMs: 5 },
      { distribution: 'lognormal', medianMs: 80, sigma: 0.5 },
      { distribution: 'pareto', scaleMs: 10, shape: 1.5 },
    ]) {
      assert.deepEqual(validateFaultRule({ id: 'l', kind: 'latency', direction: 'outbound', latency }).latency, latency);
    }
    // `stats`, as GET answers it, may come back in a PUT: it is read-only and ignored.
    assert.equal('stats' in validateFaultRule({ id: 'x', ...base, stats: { matched: 3, injected: 1 } }), false);
  });

  it('refuses bad input with a FaultConfigError naming the field', () => {
    refuses(() => validateFaultRule(null), '(root)');
    refuses(() => validateFaultRule({ ...base }), 'id');
    refuses(() => validateFaultRule({ id: 'has space', ...base }), 'id');
    refuses(() => validateFaultRule({ id: 'x'.repeat(65), ...base }), 'id');
    refuses(() => validateFaultRule({ id: 'a', ...base }, { id: 'b' }), 'id');
    refuses(() => validateFaultRule({ id: 'x', direction: 'inbound' }), 'kind');
    refuses(() => validateFaultRule({ id: 'x', kind: 'explode', direction: 'inbound' }), 'kind');
    refuses(() => validateFaultRule({ id: 'x', kind: 'error' }), 'direction');
    refuses(() => validateFaultRule({ id: 'x', kind: 'error', direction: 'sideways' }), 'direction');
    refuses(() => validateFaultRule({ id: 'x', ...base, probabilty: 0.5 }), 'probabilty');
    refuses(() => validateFaultRule({ id: 'x', ...base, probability: 1.5 }), 'probability');
    refuses(() => validateFaultRule({ id: 'x', ...base, probability: '0.5' }), 'probability');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: 'payments' }), 'match');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { modul: 'payments' } }), 'match.modul');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { module: '' } }), 'match.module');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { module: 'payment' } }, { modules: ['payments', 'orders'] }), 'match.module');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { dependency: 'payments' } }), 'match.dependency');
    refuses(() => validateFaultRule({ id: 'x', kind: 'error', direction: 'outbound', match: { route: '/api/x' } }), 'match.route');
    refuses(() => validateFaultRule({ id: 'x', kind: 'partition', match: { route: '/a', dependency: 'b' } }), 'match.dependency');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { route: 'api/x' } }), 'match.route');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { route: 'get /api/x' } }), 'match.route');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { route: '/api/**/x' } }), 'match.route');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { route: '/api/x*' } }), 'match.route');
    refuses(() => validateFaultRule({ id: 'x', ...base, match: { route: '/api/x?y=1' } }), 'match.route');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound' }), 'latency');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { fixedMs: -1 } }), 'latency.fixedMs');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { fixedMs: 10, maxMs: 20 } }), 'latency.maxMs');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { meanMs: 10 } }), 'latency');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { distribution: 'gamma' } }), 'latency.distribution');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { distribution: 'uniform', minMs: 20, maxMs: 10 } }), 'latency.maxMs');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { distribution: 'exponential', meanMs: 0 } }), 'latency.meanMs');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { distribution: 'lognormal', medianMs: 10 } }), 'latency.sigma');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { distribution: 'pareto', scaleMs: 10, shape: -2 } }), 'latency.shape');
    refuses(() => validateFaultRule({ id: 'x', kind: 'latency', direction: 'inbound', latency: { fixedMs: 10_000_000 } }), 'latency.fixedMs');
    refuses(() => validateFaultRule({ id: 'x', ...base, status: 404 }), 'status');
    refuses(() => validateFaultRule({ id: 'x', ...base, status: 503.5 }), 'status');
    refuses(() => validateFaultRule({ id: 'x', kind: 'hang', direction: 'inbound', hangMs: 0 }), 'hangMs');
    refuses(() => validateFaultRule({ id: 'x', kind: 'hang', direction: 'inbound', status: 503 }), 'status');
    refuses(() => validateFaultRule({ id: 'x', kind: 'hang', direction: 'inbound', latency: { fixedMs: 1 } }), 'latency');
    refuses(() => validateFaultRule({ id: 'x', kind: 'reset', direction: 'inbound', hangMs: 10 }), 'hangMs');
    refuses(() => validateFaultRule({ id: 'x', kind: 'crash', direction: 'inbound', signal: 'SIGINT' }), 'signal');
    refuses(() => validateFaultRule({ id: 'x', ...base, signal: 'SIGKILL' }), 'signal');
  });

  it('validates a set all or nothing, naming the rule by its index', () => {
    const good = { id: 'a', ...base };
    const error = refuses(() => validateFaultSet({ rules: [good, good, { id: 'c', kind: 'latency', direction: 'inbound', latency: { distribution: 'lognormal', medianMs: -5, sigma: 1 } }] }), 'rules[1].id');
    assert.match(error.message, /duplicates rules\[0\]\.id/);
    refuses(() => validateFaultSet({ rules: [good, { id: 'b', ...base }, { id: 'c', kind: 'latency', direction: 'inbound', latency: { distribution: 'lognormal', medianMs: -5, sigma: 1 } }] }), 'rules[2].latency.medianMs');
    refuses(() => validateFaultSet({ rules: [good, 'nope'] }), 'rules[1]');
    refuses(() => validateFaultSet({ rules: {} }), 'rules');
    refuses(() => validateFaultSet({ seed: -1, rules: [] }), 'seed');
    refuses(() => validateFaultSet({ seed: 1, rules: [], extra: true }), 'extra');
    assert.deepEqual(validateFaultSet({ seed: 9, rules: [good] }), { seed: 9, rules: [validateFaultRule(good)] });
  });

  it('matches route patterns: * is one segment, a trailing ** the rest, a method exactly', () => {
    const m = (pattern: string, method: string, path: string) => matchesRoute(parseRoutePattern(pattern), method, splitPath(path));
    assert.equal(m('/api/orders', 'GET', '/api/orders'), true);
    assert.equal(m('/api/orders', 'GET', '/api/orders/'), true);
    assert.equal(m('/api/orders', 'GET', '/api/orders?x=1'), true);
    assert.equal(m('/api/orders', 'GET', '/api/orders/1'), false);
    assert.equal(m('POST /api/orders/*', 'POST', '/api/orders/42'), true);
    assert.equal(m('POST /api/orders/*', 'GET', '/api/orders/42'), false);
    assert.equal(m('POST /api/orders/*', 'POST', '/api/orders/42/events'), false);
    assert.equal(m('/api/*/charges', 'GET', '/api/payments/charges'), true);
    assert.equal(m('/api/payments/**', 'GET', '/api/payments'), true);
    assert.equal(m('/api/payments/**', 'GET', '/api/payments/charges/1/refund'), true);
    assert.equal(m('/api/payments/**', 'GET', '/api/paymentsx'), false);
    assert.equal(m('/**', 'DELETE', '/'), true);
    assert.equal(m('/', 'GET', '/'), true);
  });

  it('reads a rules file, naming the file and the field when it is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'faults-file-'));
    try {
      const file = join(dir, 'faults.json');
      writeFileSync(file, JSON.stringify({ seed: 5, rules: [{ id: 'slow', kind: 'latency', direction: 'outbound', match: { dependency: 'payments' }, latency: { fixedMs: 30 } }] }));
      assert.deepEqual(readFaultFile(file), { seed: 5, rules: [{ id: 'slow', kind: 'latency', direction: 'outbound', match: { dependency: 'payments' }, probability: 1, latency: { fixedMs: 30 } }] });
      writeFileSync(file, JSON.stringify({ rules: [{ id: 'ok', ...base }, { id: 'bad', kind: 'error', direction: 'inbound', status: 200 }] }));
      refuses(() => readFaultFile(file), 'rules[1].status', file);
      writeFileSync(file, '{ "rules": [ ');
      refuses(() => readFaultFile(file), '(root)', file);
      refuses(() => readFaultFile(join(dir, 'missing.json')), '(root)', join(dir, 'missing.json'));
      refuses(() => readFaultFile(join(dir, 'faults.yaml')), '(root)', join(dir, 'faults.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has one error family, recognised across copies by its brand', () => {
    const e = new UnknownFaultRuleError('gone');
    assert.ok(e instanceof FaultError && e instanceof UnknownFaultRuleError && !(e instanceof FaultConfigError));
    assert.ok(isFaultError(e));
    // A copy from another install: same brand, same code, another prototype chain.
    const copy = Object.assign(Object.create(Error.prototype) as object, { code: 'BULWARK_FAULT_INVALID_RULE' });
    Object.defineProperty(copy, Symbol.for('bulwark.faults.error'), { value: true });
    assert.ok(copy instanceof FaultConfigError && copy instanceof FaultError && !(copy instanceof UnknownFaultRuleError));
    assert.equal(e.toProblem().status, 404);
  });
});
