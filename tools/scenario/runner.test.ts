import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { reportFigures, timeToRecover } from './report.js';
import { loadPhases, runScenario } from './runner.js';
import { parseScenario, ScenarioError } from './scenario.js';
import { startShopProcess, type ShopProcess } from './shop-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The shop's fault rules, as its admin API lists them. */
async function adminRules(shop: ShopProcess): Promise<{ id: string; stats: { matched: number; injected: number } }[]> {
  const res = await fetch(`${shop.url}/admin/faults`, { headers: { 'x-shop-internal-key': shop.internalKey } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { rules: { id: string; stats: { matched: number; injected: number } }[] }).rules;
}

const CATALOG_DOWN = `name: catalog-down
workload: { type: http, method: GET, path: /api/catalog/products }
faults:
  catalog-down: { kind: error, direction: inbound, match: { route: GET /api/catalog/products }, status: 503 }
hops:
  - { name: catalog per user request, from: user, to: GET /api/catalog/products }
phases:
  - { name: baseline, duration: 3s, rate: 20 }
  - { name: outage, duration: 2s, rate: 20, faults: [catalog-down] }
  - { name: recovery, duration: 5s, rate: 20 }
`;

describe('scenario runner against a monolith shop (its real fault admin API)', () => {
  let shop: ShopProcess;
  let out: string;
  before(async () => {
    shop = await startShopProcess();
    out = mkdtempSync(join(tmpdir(), 'scenario-test-'));
  });
  after(async () => {
    await shop?.close();
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('switches the fault on for its phase and off after, and reports every section', async () => {
    const scenario = parseScenario(CATALOG_DOWN, { file: 'catalog-down.yaml' });
    const seen: string[][] = [];
    const run = await runScenario(scenario, {
      target: shop.url,
      internalKey: shop.internalKey,
      outDir: out,
      onPhase: async () => {
        seen.push((await adminRules(shop)).map((r) => r.id));
      },
    });
    // On during the outage only, and gone after the run.
    assert.deepEqual(seen, [[], ['catalog-down'], []]);
    assert.deepEqual(await adminRules(shop), []);
    assert.equal(run.faultsCleared, true);

    const r = run.report;
    assert.deepEqual(
      r.phases.map((p) => [p.name, p.faults]),
      [
        ['baseline', []],
        ['outage', ['catalog-down']],
        ['recovery', []],
      ],
    );
    const [baseline, outage, recovery] = r.phases;
    assert.ok(outage!.failed > 0 && (outage!.statuses['503'] ?? 0) > 0, JSON.stringify(outage!.statuses));
    assert.ok(outage!.errorRate > baseline!.errorRate && outage!.errorRate > recovery!.errorRate);
    for (const p of r.phases) {
      assert.ok(p.scheduled > 0 && p.goodput >= 0 && p.latency.p99 >= p.latency.p50 && p.latency.p999 >= p.latency.p99, p.name);
    }
    assert.ok(r.timeline.length >= 9);
    assert.equal(r.faultWindows.length, 1);
    assert.deepEqual(r.faultWindows[0]?.faults, ['catalog-down']);

    // The fault's counts, read before it was removed.
    const fault = r.faults.find((f) => f.name === 'catalog-down');
    assert.ok(fault?.stats !== null && fault?.stats !== undefined && fault.stats.injected > 0 && fault.stats.matched >= fault.stats.injected, JSON.stringify(fault));
    assert.deepEqual(fault.phases, ['outage']);

    // Counter deltas per phase: the route served once per user request; the hop says the same.
    const route = r.routes.find((x) => x.name === 'GET /api/catalog/products');
    assert.ok(route !== undefined && route.values.length === 3 && route.values.every((v) => v > 0), JSON.stringify(r.routes));
    assert.deepEqual(r.hops[0]?.perRequest.map((v) => v !== null && v > 0.8 && v <= 1.2), [true, true, true], JSON.stringify(r.hops));

    // SLOs sampled, recovery found after the outage.
    assert.ok(r.slos.some((s) => s.name === 'order-placement-availability' && s.budgetTimeline.length > 0));
    assert.equal(r.recovery.baseline?.phases.join(), 'baseline');
    assert.notEqual(r.recovery.recoveredAfterMs, null, r.recovery.note);
    assert.equal(typeof reportFigures(r).recovered_after_ms, 'number');

    // The files.
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as typeof r;
    assert.equal(json.scenario.name, 'catalog-down');
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    for (const heading of ['## Phases', '## Time to recover', '## Attempts per request at each hop', '## SLOs', '## Faults', '![Throughput](throughput.svg)']) assert.ok(md.includes(heading), heading);
    for (const file of ['throughput.svg', 'latency.svg', 'slo-budget.svg', 'attempts.svg']) assert.ok(existsSync(join(out, file)), file);
  });

  it('clears its faults when the run is aborted, and says it was aborted', async () => {
    const scenario = parseScenario(CATALOG_DOWN.replace('duration: 2s', 'duration: 60s'), { file: 'catalog-down.yaml' });
    const abort = new AbortController();
    let onDuringOutage: string[] = [];
    const run = await runScenario(scenario, {
      target: shop.url,
      internalKey: shop.internalKey,
      signal: abort.signal,
      onPhase: async (phase) => {
        if (phase.name !== 'outage') return;
        onDuringOutage = (await adminRules(shop)).map((r) => r.id);
        setTimeout(() => abort.abort(), 300);
      },
    });
    assert.deepEqual(onDuringOutage, ['catalog-down']);
    assert.equal(run.aborted, true);
    assert.equal(run.faultsCleared, true);
    assert.deepEqual(await adminRules(shop), []);
    assert.ok(run.report.notes.some((n) => n.includes('aborted')));
  });

  it('a rule the admin refuses fails the run naming the rule’s line, before any load', async () => {
    const served = async (): Promise<number> =>
      (await (await fetch(`${shop.url}/metrics`)).text())
        .split('\n')
        .filter((l) => l.startsWith('bulwark_http_server_requests_total{method="GET",route="/api/catalog/products"'))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    const text = CATALOG_DOWN.replace('match: { route: GET /api/catalog/products }', 'match: { module: catalogue }');
    const scenario = parseScenario(text, { file: 'typo.yaml' });
    const before = await served();
    await assert.rejects(
      runScenario(scenario, { target: shop.url, internalKey: shop.internalKey }),
      (e: unknown) => e instanceof ScenarioError && e.line === 4 && e.field === 'faults.catalog-down.match.module' && /refused by the fault admin/.test(e.message),
    );
    assert.equal(await served(), before, 'no load was sent');
    assert.deepEqual(await adminRules(shop), []);
  });
});

describe('scenario runner pieces', () => {
  it('explicit starts leave idle phases in the gaps', () => {
    const s = parseScenario(`name: gaps
workload: { type: http, path: / }
phases:
  - { name: a, duration: 1s, rate: 1 }
  - { name: b, at: 3s, duration: 1s, rate: 1 }
`);
    const { phases, faults } = loadPhases(s);
    assert.deepEqual(
      phases.map((p) => [p.name, p.durationMs, p.rate]),
      [
        ['a', 1_000, 1],
        ['idle-before-b', 2_000, 0],
        ['b', 1_000, 1],
      ],
    );
    assert.equal(faults.length, 3);
  });

  it('time to recover: the first of N healthy buckets after the fault, or null', () => {
    const spec = { goodputRatio: 0.9, errorRateSlack: 0.01, buckets: 3 };
    const mk = (oks: number[]) => oks.map((ok, i) => ({ tMs: i * 1000, ok, failed: 10 - ok }));
    // baseline 0-4 s (10/s), fault 4-6 s, then 2 bad buckets, then healthy.
    const buckets = mk([10, 10, 10, 10, 0, 0, 3, 5, 10, 10, 10, 10]);
    const base = { buckets, intervalMs: 1000, baseline: { fromMs: 0, toMs: 4_000 }, endMs: 12_000, spec };
    assert.equal(timeToRecover({ ...base, faultEndMs: 6_000 }).recoveredAfterMs, 2_000);
    // The bucket holding the fault's end counts when at most half of it is before the end.
    assert.equal(timeToRecover({ ...base, buckets: mk([10, 10, 10, 10, 0, 0, 10, 10, 10, 10, 10, 10]), faultEndMs: 6_030 }).recoveredAfterMs, 0);
    assert.equal(timeToRecover({ ...base, buckets: mk([10, 10, 10, 10, 0, 0, 3, 5, 10, 10, 3, 10]), faultEndMs: 6_000 }).recoveredAfterMs, null);
    assert.equal(timeToRecover({ ...base, baseline: { fromMs: 0, toMs: 500 }, faultEndMs: 6_000 }).recoveredAfterMs, null);
  });

  it('the CLI refuses a bad file with exit 2, naming the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scenario-cli-'));
    try {
      const file = join(dir, 'bad.yaml');
      const phase = '  - { name: a, duration: 1s, rate: 9000 }';
      writeFileSync(file, `name: bad\nworkload: { type: http, path: / }\nphases:\n${phase}\n`);
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', join(ROOT, 'tools/scenario/cli.ts'), file], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.ok(r.stderr.includes(`${file}:4:${phase.indexOf('9000') + 1}: phases[0].rate: 9000/s is above the ceiling maxRate 5000/s`), r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
