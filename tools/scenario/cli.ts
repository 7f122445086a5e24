/**
 * `npm run scenario -- <file.yaml> [--target=URL] [--out=DIR] [--start-shop] [--max-rate=N] [--quiet]`
 *
 * Runs a scenario file (README.md) against a target and writes its report
 * (report.json, report.md, SVG charts) to `--out` (default a new directory
 * under the OS temp dir). `--start-shop` starts a monolith shop in a temp dir
 * for the run (the command then needs no server). Live progress goes to
 * stderr; the report's paths and a summary to stdout, and as the LAST line
 * one JSON object of figures. Ctrl-C aborts the run: no further arrivals, the
 * faults are cleared, the report of what ran is still written.
 *
 * Exit 0: ran (whatever the figures); 1: the run failed or its faults could
 * not be cleared; 2: bad arguments or a bad scenario file (each problem
 * printed as file:line:col).
 */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { reportFigures } from './report.js';
import { runScenario } from './runner.js';
import { loadScenario, ScenarioError } from './scenario.js';
import { startShopProcess, type ShopProcess } from './shop-process.js';

const USAGE = 'usage: npm run scenario -- <file.yaml> [--target=URL] [--out=DIR] [--start-shop] [--max-rate=N] [--quiet]';

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: 'string' },
        out: { type: 'string' },
        'start-shop': { type: 'boolean', default: false },
        'max-rate': { type: 'string' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    process.stderr.write(`scenario: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) {
    process.stderr.write(`scenario: ${file === undefined ? 'a scenario file is required' : `unexpected arguments: ${extra.join(' ')}`}\n${USAGE}\n`);
    return 2;
  }
  const ceiling = values['max-rate'] === undefined ? undefined : Number(values['max-rate']);
  if (ceiling !== undefined && !(Number.isFinite(ceiling) && ceiling > 0)) {
    process.stderr.write(`scenario: --max-rate must be a positive number, got ${values['max-rate']}\n`);
    return 2;
  }

  let scenario;
  try {
    scenario = loadScenario(file, ceiling === undefined ? {} : { maxRate: ceiling });
  } catch (error) {
    if (error instanceof ScenarioError) {
      process.stderr.write(`scenario: ${file} is invalid:\n${error.message}\n`);
      return 2;
    }
    throw error;
  }

  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  const outDir = resolve(values.out ?? join(tmpdir(), 'bulwark-scenario', `${scenario.name}-${stamp}`));
  const abort = new AbortController();
  const onSignal = (): void => {
    if (abort.signal.aborted) return;
    process.stderr.write('\nscenario: aborting (the faults will be cleared, the report of what ran written)...\n');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let shop: ShopProcess | undefined;
  try {
    let target = values.target;
    let internalKey: string | undefined;
    if (values['start-shop'] === true) {
      process.stderr.write('scenario: starting a monolith shop...\n');
      shop = await startShopProcess();
      target = shop.url;
      internalKey = shop.internalKey;
      process.stderr.write(`scenario: shop ready on ${shop.url} (data ${shop.dataDir})\n`);
    }
    const run = await runScenario(scenario, {
      ...(target === undefined ? {} : { target }),
      ...(internalKey === undefined ? {} : { internalKey }),
      outDir,
      progress: values.quiet !== true,
      signal: abort.signal,
    });
    const r = run.report;
    if (values.quiet !== true) {
      process.stdout.write(`\nscenario ${r.scenario.name}: ${r.phases.length} phases, ${(r.durationMs / 1000).toFixed(1)} s${run.aborted ? ' (ABORTED)' : ''}\n`);
      for (const p of r.phases) {
        process.stdout.write(
          `  ${p.name.padEnd(20)} ${p.faults.length > 0 ? `[${p.faults.join(', ')}] ` : ''}goodput ${p.goodput.toFixed(1)}/s, errors ${(p.errorRate * 100).toFixed(2)} %, p50 ${p.latency.p50} ms, p99 ${p.latency.p99} ms, p99.9 ${p.latency.p999} ms\n`,
        );
      }
      process.stdout.write(`  time to recover: ${r.recovery.recoveredAfterMs === null ? `none (${r.recovery.note})` : `${(r.recovery.recoveredAfterMs / 1000).toFixed(1)} s`}\n`);
      process.stdout.write(`report: ${run.files?.markdown ?? ''}\n        ${run.files?.json ?? ''}\n`);
      for (const c of run.files?.charts ?? []) process.stdout.write(`        ${c}\n`);
    }
    process.stdout.write(`${JSON.stringify({ ...reportFigures(r), report: run.files?.json ?? null, faults_cleared: run.faultsCleared, aborted: run.aborted })}\n`);
    return run.faultsCleared ? 0 : 1;
  } catch (error) {
    if (error instanceof ScenarioError) {
      process.stderr.write(`scenario: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`scenario: the run failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await shop?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`scenario: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
