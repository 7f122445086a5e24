import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SloSpecError, isSloSpecError } from './errors.js';
import { defaultAlertPolicy, validateSlos } from './spec.js';

const ok = { name: 'checkout', service: 'orders', objective: 0.999 };

/** The paths of the issues `validateSlos(input)` reports (it must throw). */
function paths(input: unknown): string[] {
  try {
    validateSlos(input);
  } catch (error) {
    assert.ok(isSloSpecError(error), `expected an SloSpecError, got ${String(error)}`);
    return error.issues.map((i) => i.path);
  }
  assert.fail('validation passed');
}

describe('SLO spec validation', () => {
  it('normalises a minimal spec: 30-day window, the workbook alert policy, budget without float noise', () => {
    const [spec] = validateSlos([ok]);
    assert.equal(spec!.windowMs, 30 * 86_400_000);
    assert.equal(spec!.errorBudget, 0.001);
    assert.deepEqual(
      spec!.alerts.map((a) => [a.severity, a.burnRate, a.longWindowMs / 60_000, a.shortWindowMs / 60_000]),
      [
        ['page', 14.4, 60, 5],
        ['page', 6, 360, 30],
        ['ticket', 3, 1440, 120],
        ['ticket', 1, 4320, 360],
      ],
    );
    assert.equal(defaultAlertPolicy.length, 4);
    assert.equal(validateSlos([{ ...ok, window: '28d' }])[0]!.windowMs, 28 * 86_400_000);
  });

  it('names the field of an objective outside (0, 1), NaN or missing', () => {
    for (const objective of [0, 1, 1.5, -0.1, Number.NaN, '0.99', undefined]) {
      assert.deepEqual(paths([ok, ok, { ...ok, name: 'third', objective }]).slice(-1), ['slos[2].objective'], `objective ${String(objective)}`);
    }
    assert.throws(() => validateSlos([{ ...ok, objective: 2 }]), (e: unknown) => e instanceof SloSpecError && /^slos\[0\]\.objective: must be a number strictly between 0 and 1/.test(e.message));
  });

  it('names windows that do not nest', () => {
    const alert = { severity: 'page', burnRate: 14.4, longWindow: '1h', shortWindow: '5m' };
    assert.deepEqual(paths([{ ...ok, alerts: [{ ...alert, shortWindow: '2h' }] }]), ['slos[0].alerts[0].shortWindow'], 'short longer than long');
    assert.deepEqual(paths([{ ...ok, alerts: [alert, { ...alert, shortWindow: '1h' }] }]), ['slos[0].alerts[1].shortWindow'], 'short equal to long');
    assert.deepEqual(paths([{ ...ok, window: '28d', alerts: [{ ...alert, longWindow: '29d' }] }]), ['slos[0].alerts[0].longWindow'], 'long window beyond the SLO window');
    assert.deepEqual(paths([{ ...ok, alerts: [{ ...alert, shortWindow: '-5m' }] }]), ['slos[0].alerts[0].shortWindow'], 'negative window');
    assert.deepEqual(paths([{ ...ok, alerts: [{ ...alert, longWindow: Number.NaN }] }]), ['slos[0].alerts[0].longWindow'], 'NaN window');
    assert.deepEqual(paths([{ ...ok, alerts: [{ ...alert, burnRate: -1 }] }]), ['slos[0].alerts[0].burnRate'], 'negative burn rate');
    assert.deepEqual(paths([{ ...ok, alerts: [{ ...alert, severity: 'sms' }] }]), ['slos[0].alerts[0].severity']);
    for (const window of ['31h', '100d', '0d', 'P30D', -1]) assert.deepEqual(paths([{ ...ok, window }]), ['slos[0].window'], `window ${String(window)}`);
  });

  it('refuses a burn rate the objective can never reach (14.4x at 90% would need 144% errors)', () => {
    assert.deepEqual(paths([{ ...ok, objective: 0.9 }]), ['slos[0].alerts[0].burnRate']);
    assert.equal(validateSlos([{ ...ok, objective: 0.9, alerts: [{ severity: 'page', burnRate: 5, longWindow: '1h', shortWindow: '5m' }] }]).length, 1);
  });

  it('reports every problem at once, with duplicate names, bad labels and a malformed SLI', () => {
    const issues = paths([ok, { ...ok, service: '', labels: { 'bad-label': 'x', sloth_id: 'y' } }, { ...ok, name: 'm', sli: { kind: 'metrics', total: { name: 'x_total' } } }, 42]);
    assert.deepEqual(issues.sort(), ['slos[1].labels.bad-label', 'slos[1].labels.sloth_id', 'slos[1].service', 'slos[2].sli.good', 'slos[3]'].sort());
    assert.deepEqual(paths([ok, ok]), ['slos[1].name']);
    assert.deepEqual(paths({}), ['slos']);
  });
});
