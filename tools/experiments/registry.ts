/**
 * Every experiment `npm run experiment` and `npm run experiments:docs` know.
 * To add one, add an entry to `experiments` (and, for its page in docs/, a
 * `doc`): `run` takes the numeric options named in `options`, and `table`,
 * `figures` and `charts` read its result.
 */
import { amplificationCharts, amplificationFigures, amplificationTable, runAmplification } from './amplification.js';
import { bulkheadCharts, bulkheadFigures, bulkheadTable, runBulkhead } from './bulkhead.js';
import { hedgingCharts, hedgingFigures, hedgingTable, runHedging } from './hedging.js';
import { jitterCharts, jitterFigures, jitterTable, runJitter } from './jitter.js';
import { metastableCharts, metastableFigures, metastableTable, runMetastable } from './metastable.js';
import { paymentsOutageCharts, paymentsOutageDoc, paymentsOutageFigures, paymentsOutageTable, runPaymentsOutage } from './payments-outage.js';
import { amplificationDoc, bulkheadDoc, hedgingDoc, jitterDoc, metastableDoc } from './pages.js';

/** One figure of the JSON line; `null` where a figure does not exist (e.g. a recovery that never came). */
export type Figure = number | string | null;

/** What docs/experiments/<name>.md says around the figures. Markdown. */
export interface ExperimentDoc<R> {
  title: string;
  /** What should happen, and the published work it comes from. */
  expectation: string;
  /** How the experiment is built. */
  setup: string;
  /** One sentence: the main figures and whether they agree with the published ones (the page's opening line and the index's). */
  headline?(result: R): string;
  /** How this run's figures compare with the published ones (and with the expectation). */
  comparison(result: R): string;
}

export interface Experiment<R = unknown> {
  /** One line for the usage text and the docs index. */
  describe: string;
  /** Numeric options `--key=value` may override. */
  options: readonly string[];
  /** Options of the shortened run (`--quick`): about the sizes the tests use. */
  quick?: Record<string, number>;
  run(options: Record<string, number>): Promise<R>;
  /** A readable table (Markdown). */
  table(result: R): string;
  /** The figures of the JSON line (the runner adds `node`). */
  figures(result: R): Record<string, Figure>;
  /** Charts: file name (`<name>-….svg`) → SVG document. */
  charts?(result: R): Record<string, string>;
  doc?: ExperimentDoc<R>;
}

export const experiments: Record<string, Experiment> = {
  jitter: {
    describe: "Brooker's OCC simulation: N clients, backoff with no / equal / full / decorrelated jitter (virtual time)",
    options: ['clients', 'runs', 'seed', 'baseMs', 'capMs', 'netMeanMs', 'netSdMs'],
    quick: { clients: 50, runs: 3 },
    run: (options) => runJitter(options),
    table: jitterTable,
    figures: jitterFigures,
    charts: jitterCharts,
    doc: jitterDoc,
  } satisfies Experiment<Awaited<ReturnType<typeof runJitter>>>,
  amplification: {
    describe: 'user → A → B → C over local HTTP, C down: retries at every layer / top only / top with a retry budget',
    options: ['requests', 'warmup', 'concurrency', 'maxAttempts', 'budgetRatio', 'budgetMinRetriesPerSecond'],
    quick: { requests: 40, warmup: 10 },
    run: (options) => runAmplification(options),
    table: amplificationTable,
    figures: amplificationFigures,
    charts: amplificationCharts,
    doc: amplificationDoc,
  } satisfies Experiment<Awaited<ReturnType<typeof runAmplification>>>,
  metastable: {
    describe: 'an overloaded dependency (own process) with a short outage: naive retries / timeout only / retry budget + breaker — does goodput recover?',
    options: ['workers', 'serviceMs', 'queueLimit', 'rate', 'timeoutMs', 'maxAttempts', 'baselineS', 'outageS', 'afterS', 'seed'],
    quick: { workers: 4, serviceMs: 40, rate: 75, baselineS: 3, outageS: 2, afterS: 6 },
    run: (options) => runMetastable(options),
    table: metastableTable,
    figures: metastableFigures,
    charts: metastableCharts,
    doc: metastableDoc,
  } satisfies Experiment<Awaited<ReturnType<typeof runMetastable>>>,
  hedging: {
    describe: 'a dependency with a heavy latency tail (own process): p50/p99/p99.9 and extra load, plain vs hedged at the observed p95 with a budget',
    options: ['rate', 'warmupS', 'measureS', 'fastMinMs', 'fastMaxMs', 'slowShare', 'slowMinMs', 'slowMaxMs', 'quantile', 'budgetRatio', 'budgetMinPerSecond', 'seed'],
    quick: { warmupS: 1, measureS: 5 },
    run: (options) => runHedging(options),
    table: hedgingTable,
    figures: hedgingFigures,
    charts: hedgingCharts,
    doc: hedgingDoc,
  } satisfies Experiment<Awaited<ReturnType<typeof runHedging>>>,
  bulkhead: {
    describe: "the shop's product page while recommendations hang: page and dependency-call latency with and without bulkheads",
    options: ['rate', 'warmupS', 'normalS', 'hangS', 'timeoutMs', 'latencyMs', 'slots', 'configHang', 'seed'],
    quick: { warmupS: 2, normalS: 3, hangS: 6 },
    run: (options) => runBulkhead(options),
    table: bulkheadTable,
    figures: bulkheadFigures,
    charts: bulkheadCharts,
    doc: bulkheadDoc,
  } satisfies Experiment<Awaited<ReturnType<typeof runBulkhead>>>,
  'payments-outage': {
    describe: 'the shop under steady order load while payments fail: order placement and checkout SLOs, orders compensated, time to recover, invariants after',
    options: ['baselineS', 'outageS', 'recoveryS', 'rate', 'users', 'seed'],
    quick: { baselineS: 3, outageS: 12, recoveryS: 8, rate: 8, users: 3 },
    run: (options) => runPaymentsOutage(options),
    table: paymentsOutageTable,
    figures: paymentsOutageFigures,
    charts: paymentsOutageCharts,
    doc: paymentsOutageDoc,
  } satisfies Experiment<Awaited<ReturnType<typeof runPaymentsOutage>>>,
};
