/**
 * The exported rules are checked by Prometheus's own tool: `promtool check
 * rules` for syntax and types, and `promtool test rules` for behaviour, with
 * the same outage the engine test uses (a 2-minute full outage at 99.9% after
 * more than 3 clean days), scraped every minute.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isSloSpecError } from './errors.js';
import { prometheusRules } from './prometheus-rules.js';
import type { SloSpecInput } from './spec.js';

const checkout: SloSpecInput = { name: 'checkout', service: 'orders', objective: 0.999, labels: { team: 'shop' }, description: 'Checkout answers without a 5xx.' };
const searchLatency: SloSpecInput = {
  name: 'search-latency',
  service: 'catalog',
  objective: 0.99,
  window: '28d',
  sli: { kind: 'metrics', total: { name: 'http_request_duration_seconds_count', labels: { route: '/search' } }, good: { name: 'http_request_duration_seconds_bucket', labels: { route: '/search', le: '0.3' } } },
};
const paymentsErrors: SloSpecInput = {
  name: 'payments',
  service: 'payments',
  objective: 0.995,
  sli: { kind: 'metrics', total: { name: 'payments_total' }, bad: { name: 'payments_failed_total', labels: { reason: 'processor' } } },
  alerts: [{ severity: 'page', burnRate: 10, longWindow: '2h', shortWindow: '10m' }],
};

const dir = mkdtempSync(join(tmpdir(), 'bulwark-slo-rules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs promtool; a missing promtool is a failure that says so, never a skip. */
function promtool(args: string[]): string {
  try {
    return execFileSync('promtool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') assert.fail('promtool is not installed: install the Debian package `prometheus` (it provides /usr/bin/promtool) to validate the generated rules');
    assert.fail(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

describe('Prometheus rules export', () => {
  const yaml = prometheusRules([checkout, searchLatency, paymentsErrors]);
  const file = join(dir, 'slo-rules.yml');
  writeFileSync(file, yaml);

  it('passes `promtool check rules`', () => {
    const out = promtool(['check', 'rules', file]);
    // checkout: 7 SLI windows + 30d, 7 meta, 2 alerts = 17; search-latency: same shape = 17;
    // payments: 5m, 10m, 2h + 30d = 4 SLI, 7 meta, 1 alert = 12.
    assert.match(out, /SUCCESS: 46 rules found/);
  });

  it('has Sloth\'s recording rules per window and the workbook thresholds with page/ticket severities', () => {
    for (const w of ['5m', '30m', '1h', '2h', '6h', '1d', '3d', '30d', '28d']) assert.ok(yaml.includes(`record: "slo:sli_error:ratio_rate${w}"`), `ratio_rate${w}`);
    for (const r of ['objective:ratio', 'error_budget:ratio', 'time_period:days', 'current_burn_rate:ratio', 'period_burn_rate:ratio', 'period_error_budget_remaining:ratio']) assert.ok(yaml.includes(`record: "slo:${r}"`), r);
    for (const t of ['(14.4 * 0.001)', '(6 * 0.001)', '(3 * 0.001)', '(1 * 0.001)', '(14.4 * 0.01)', '(10 * 0.005)']) assert.ok(yaml.includes(t), t);
    assert.equal(yaml.match(/severity: "page"/g)?.length, 3 * 2, 'severity and sloth_severity on 3 page alerts');
    assert.equal(yaml.match(/severity: "ticket"/g)?.length, 2 * 2);
    assert.ok(yaml.includes('vector(28)'));
    assert.ok(yaml.includes('sum(rate(payments_failed_total{reason="processor"}[10m]))'));
    assert.ok(yaml.includes('(sum(rate(http_request_duration_seconds_count{route="/search"}[1h])) - sum(rate(http_request_duration_seconds_bucket{route="/search",le="0.3"}[1h])))'));
  });

  it('refuses an invalid spec with the field named', () => {
    assert.throws(
      () => prometheusRules([{ ...checkout, objective: 1 }]),
      (e: unknown) => isSloSpecError(e) && e.path === 'slos[0].objective',
    );
  });

  it('pages in Prometheus on the same outage as the engine, and resolves when the 5m window clears (`promtool test rules`)', () => {
    // The checkout SLO with its two page conditions only (the ticket windows need
    // 3 days of history, which makes promtool slow), in a file of its own.
    const pageOnly: SloSpecInput = { ...checkout, alerts: [
      { severity: 'page', burnRate: 14.4, longWindow: '1h', shortWindow: '5m' },
      { severity: 'page', burnRate: 6, longWindow: '6h', shortWindow: '30m' },
    ] };
    writeFileSync(join(dir, 'page-rules.yml'), prometheusRules([pageOnly]));
    // 6 000 events a minute scraped every minute for 400 clean minutes; then the
    // good counter stops for two scrape intervals, (400m, 402m].
    // Prometheus 2.x range selectors are closed, [t - w, t]: a 5m range holds 6
    // samples (5 intervals), a 1h range 61 (60); 3.x ranges are left-open (4 and 59).
    const closed = promtoolMajor() < 3;
    const per5m = closed ? 5 : 4;
    const per1h = closed ? 60 : 59;
    // At 401m the 5m window is 1/5 (1/4) errors and the 1h window 1/60 = 1.67%
    // (1/59 = 1.69%), both above 14.4 * 0.1% = 1.44%: the page fires at the first
    // evaluation after the outage starts, as the engine's fires 52 s in.
    // It resolves once the 5m range holds no failed interval: at 402 + 5 = 407m
    // (406m on 3.x), while the 1h window still burns 2/60 / 0.001 = 33x.
    // The 6h pair never holds: 2/360 = 0.56% < 6 * 0.1%.
    const resolvedAt = 402 + per5m;
    const labels = { sloth_id: 'orders-checkout', sloth_service: 'orders', sloth_slo: 'checkout', team: 'shop' };
    const page = {
      exp_labels: { ...labels, sloth_window: '5m', severity: 'page', sloth_severity: 'page' },
      exp_annotations: {
        summary: 'orders checkout is burning its error budget too fast (page).',
        title: '(page) orders checkout SLO error budget burn rate is too fast.',
        description: 'Checkout answers without a 5xx.',
      },
    };
    const series = '{slo="checkout",service="orders"}';
    const test = {
      rule_files: ['page-rules.yml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            { series: `bulwark_slo_events_total${series}`, values: '0+6000x500' },
            { series: `bulwark_slo_good_events_total${series}`, values: '0+6000x400 2400000x1 2406000+6000x97' },
          ],
          alert_rule_test: [
            { eval_time: '400m', alertname: 'CheckoutBurnRate', exp_alerts: [] },
            // Prometheus evaluates rule groups independently (promtool too, in no fixed
            // order): the alert group may read the recordings of the previous
            // evaluation, one minute old. So: firing by 402m, still at resolvedAt - 1,
            // resolved by resolvedAt + 1.
            { eval_time: '402m', alertname: 'CheckoutBurnRate', exp_alerts: [page] },
            { eval_time: `${resolvedAt - 1}m`, alertname: 'CheckoutBurnRate', exp_alerts: [page] },
            { eval_time: `${resolvedAt + 1}m`, alertname: 'CheckoutBurnRate', exp_alerts: [] },
          ],
          promql_expr_test: [
            // At 403m the 5m range holds both failed intervals.
            // (Rounded to 6 decimals: promtool compares floats exactly.)
            { expr: 'round(slo:sli_error:ratio_rate5m, 1e-6)', eval_time: '403m', exp_samples: [{ labels: promLabels({ ...labels, sloth_window: '5m' }), value: round6(2 / per5m) }] },
            { expr: 'round(slo:sli_error:ratio_rate1h, 1e-6)', eval_time: `${resolvedAt}m`, exp_samples: [{ labels: promLabels({ ...labels, sloth_window: '1h' }), value: round6(2 / per1h) }] },
          ],
        },
      ],
    };
    const testFile = join(dir, 'page-rules.test.yml');
    // JSON is YAML: promtool reads it as is.
    writeFileSync(testFile, JSON.stringify(test, null, 2));
    const out = promtool(['test', 'rules', testFile]);
    assert.match(out, /SUCCESS/);
  });
});

/** The major version of the installed promtool (range selectors changed in 3.0). */
function promtoolMajor(): number {
  const match = /version (\d+)\./.exec(promtool(['--version']));
  assert.ok(match !== null, 'promtool --version printed no version');
  return Number(match[1]);
}

function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

function promLabels(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ')}}`;
}
