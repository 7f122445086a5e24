import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadScenario, parseDuration, parseScenario, ScenarioError } from './scenario.js';

const GOOD = `name: payments-outage
description: payments fail for a while
maxRate: 200
workload: { type: shop, users: 20, mix: { placeOrder: 1, productPage: 3 } }
faults:
  payments-down: { kind: error, direction: inbound, match: { module: payments }, status: 503 }
  slow-recs:
    kind: latency
    direction: inbound
    match: { module: recommendations }
    latency: { distribution: lognormal, medianMs: 80, sigma: 0.5 }
hops:
  - { name: orders → payments, from: POST /api/orders, to: POST /api/payments/charges }
phases:
  - { name: baseline, duration: 10s, rate: 50 }
  - { name: outage, duration: 30s, rate: 50, faults: [payments-down, slow-recs] }
  - { name: recovery, at: 45s, duration: 1m30s, rate: 50, rateTo: 100 }
`;

/** Parses `text`, expecting a ScenarioError; returns it. */
function refuse(text: string, options: { maxRate?: number } = {}): ScenarioError {
  try {
    parseScenario(text, { file: 'bad.yaml', ...options });
  } catch (error) {
    assert.ok(error instanceof ScenarioError, `expected a ScenarioError, got ${String(error)}`);
    return error;
  }
  assert.fail('the scenario was accepted');
}

/** Line of the first line of `text` containing `needle` (1-based). */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `no line contains ${needle}`);
  return i + 1;
}

describe('scenario files', () => {
  it('parses a valid file: phases back to back unless `at` says otherwise, durations with units', () => {
    const s = parseScenario(GOOD, { file: 'good.yaml' });
    assert.equal(s.name, 'payments-outage');
    assert.equal(s.maxRate, 200);
    assert.deepEqual(s.workload, { type: 'shop', users: 20, mix: { placeOrder: 1, productPage: 3 } });
    assert.deepEqual(
      s.phases.map((p) => [p.name, p.atMs, p.durationMs, p.rate, p.rateTo, p.faults, p.line]),
      [
        ['baseline', 0, 10_000, 50, undefined, [], lineOf(GOOD, 'name: baseline')],
        ['outage', 10_000, 30_000, 50, undefined, ['payments-down', 'slow-recs'], lineOf(GOOD, 'name: outage')],
        ['recovery', 45_000, 90_000, 50, 100, [], lineOf(GOOD, 'name: recovery')],
      ],
    );
    assert.deepEqual(s.faults['payments-down'], { kind: 'error', direction: 'inbound', match: { module: 'payments' }, status: 503 });
    assert.deepEqual(s.faults['slow-recs']?.latency, { distribution: 'lognormal', medianMs: 80, sigma: 0.5 });
    assert.deepEqual(s.hops, [{ name: 'orders → payments', from: 'POST /api/orders', to: 'POST /api/payments/charges' }]);
    assert.equal(s.faultLines['slow-recs'], lineOf(GOOD, 'slow-recs:'));
  });

  it('accepts JSON (it is YAML)', () => {
    const s = parseScenario(JSON.stringify({ name: 'j', workload: { type: 'http', path: '/health/live' }, phases: [{ name: 'a', duration: '1s', rate: 5 }] }));
    assert.deepEqual(s.workload, { type: 'http', method: 'GET', path: '/health/live', headers: {} });
    assert.equal(s.phases[0]?.durationMs, 1_000);
  });

  it('durations: units required, combinations allowed', () => {
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5s'), 1_500);
    assert.equal(parseDuration('10'), undefined);
    assert.equal(parseDuration('10 s'), undefined);
  });

  it('an unknown fault in a phase names its line, column and field', () => {
    const text = GOOD.replace('faults: [payments-down, slow-recs]', 'faults: [payments-down, slow-rec]');
    const e = refuse(text);
    assert.equal(e.line, lineOf(text, 'slow-rec]'));
    assert.equal(e.column, text.split('\n')[e.line - 1]!.indexOf('slow-rec]') + 1);
    assert.equal(e.field, 'phases[1].faults[1]');
    assert.match(e.message, /^bad\.yaml:\d+:\d+: phases\[1\]\.faults\[1\]: unknown fault "slow-rec" \(defined under faults: payments-down, slow-recs\)/);
  });

  it('overlapping phases name the line of the offending `at`', () => {
    const text = GOOD.replace('at: 45s', 'at: 39s');
    const e = refuse(text);
    assert.equal(e.line, lineOf(text, 'at: 39s'));
    assert.equal(e.field, 'phases[2].at');
    assert.match(e.message, /starts at 39s, before phase "outage" \(line \d+\) ends at 40s: phases overlap/);
  });

  it('a rate above the ceiling is refused naming its line (the file’s maxRate, or the configured ceiling)', () => {
    const text = GOOD.replace('rateTo: 100', 'rateTo: 250');
    const e = refuse(text);
    assert.equal(e.line, lineOf(text, 'rateTo: 250'));
    assert.equal(e.field, 'phases[2].rateTo');
    assert.match(e.message, /250\/s is above the ceiling maxRate 200\/s/);

    // The file may not raise the configured ceiling.
    const raised = refuse(GOOD, { maxRate: 100 });
    assert.equal(raised.line, lineOf(GOOD, 'maxRate: 200'));
    assert.equal(raised.field, 'maxRate');
    assert.match(raised.message, /above the configured ceiling of 100\/s/);

    const noMax = GOOD.replace('maxRate: 200\n', '');
    const e2 = refuse(noMax.replace('rate: 50, faults', 'rate: 5000, faults'), { maxRate: 1000 });
    assert.equal(e2.field, 'phases[1].rate');
  });

  it('unknown keys, bad durations, bad rates and bad fault rules each name their line', () => {
    const cases: [string, string, string, RegExp][] = [
      [GOOD.replace('maxRate: 200', 'maxRate: 200\nrepeat: 3'), 'repeat: 3', 'repeat', /unknown key "repeat"/],
      [GOOD.replace('duration: 10s', 'duration: 10'), 'duration: 10,', 'phases[0].duration', /must be a duration with a unit/],
      [GOOD.replace('duration: 10s', 'duraton: 10s'), 'duraton: 10s', 'phases[0].duraton', /unknown key "duraton"/],
      [GOOD.replace('rate: 50 }', 'rate: -1 }'), 'rate: -1', 'phases[0].rate', /from 0 to 200/],
      [GOOD.replace('rate: 50 }', 'rate: fast }'), 'rate: fast', 'phases[0].rate', /must be a number/],
      [GOOD.replace('kind: error', 'kind: eror'), 'kind: eror', 'faults.payments-down.kind', /must be one of latency, error/],
      [GOOD.replace('sigma: 0.5', 'sigma: 0.5, meanMs: 3'), 'meanMs: 3', 'faults.slow-recs.latency.meanMs', /unknown key "meanMs"/],
      [GOOD.replace('match: { module: payments }', 'match: { modul: payments }'), 'modul: payments', 'faults.payments-down.match.modul', /unknown key/],
      [GOOD.replace('users: 20', 'users: 0'), 'users: 0', 'workload.users', /from 1 to/],
      // What the fault admin would refuse is refused here first, at the field's line.
      [GOOD.replace('status: 503', 'status: 404'), 'status: 404', 'faults.payments-down.status', /from 500 to 599, or 429/],
      [GOOD.replace('kind: latency', 'kind: hang'), 'latency: { distribution', 'faults.slow-recs.latency', /does not apply to a hang rule/],
      [GOOD.replace('direction: inbound, match: { module: payments }', 'direction: outbound, match: { route: POST /api/payments/charges }'), 'route: POST', 'faults.payments-down.match.route', /inbound requests only/],
      [GOOD.replace('from: POST /api/orders', 'from: orders'), 'from: orders', 'hops[0].from', /is not "user" or "METHOD \/route"/],
    ];
    for (const [text, needle, field, message] of cases) {
      const e = refuse(text);
      assert.equal(e.field, field, `${field}: got ${e.message}`);
      assert.equal(e.line, lineOf(text, needle), `${field}: ${e.message}`);
      assert.match(e.message, message);
      assert.match(e.message, new RegExp(`^bad\\.yaml:${e.line}:${e.column}: `));
    }
  });

  it('missing required fields, duplicate phase names, YAML syntax errors', () => {
    const missing = refuse('name: x\nphases: []\n');
    assert.deepEqual(
      missing.issues.map((i) => i.field),
      ['workload', 'phases'],
    );
    const dup = GOOD.replace('name: recovery', 'name: baseline');
    const e = refuse(dup);
    assert.equal(e.field, 'phases[2].name');
    assert.equal(e.line, lineOf(dup, 'at: 45s'));
    const syntax = refuse('name: x\nphases: [ { name: a\n');
    assert.ok(syntax.line >= 2, syntax.message);
    assert.match(syntax.message, /YAML:/);
    const dupKey = refuse('name: x\nname: y\nworkload: { type: http, path: / }\nphases: [{ name: a, duration: 1s, rate: 1 }]\n');
    assert.equal(dupKey.line, 2);
  });

  it('reports every problem, not only the first', () => {
    const text = GOOD.replace('duration: 10s', 'duration: ten').replace('[payments-down, slow-recs]', '[nope]');
    const e = refuse(text);
    assert.deepEqual(
      e.issues.map((i) => i.field),
      ['phases[0].duration', 'phases[1].faults[0]'],
    );
    assert.equal(e.message.split('\n').length, 2);
  });

  it('the example scenarios parse', () => {
    const dir = new URL('./scenarios/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 2);
    for (const f of files) loadScenario(new URL(f, dir).pathname);
  });
});
