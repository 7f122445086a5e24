/**
 * Runs one experiment and prints its table, then, as the LAST line, one JSON
 * object of figures (so runs can be tracked, like the benchmarks).
 *
 *   npm run experiment -- <name> [--json] [--key=value ...]
 *   node --import tsx --conditions=bulwark:source tools/experiments/run.ts <name> [--json]
 *
 * `--json` prints the JSON line only. Numeric options override an
 * experiment's defaults, e.g. `jitter --clients=50 --runs=3 --seed=7` or
 * `amplification --requests=200 --warmup=50`.
 */
import { amplificationFigures, amplificationTable, runAmplification } from './amplification.js';
import { jitterFigures, jitterTable, runJitter } from './jitter.js';

interface Experiment {
  describe: string;
  options: readonly string[];
  run(options: Record<string, number>): Promise<{ table: string; figures: Record<string, number | string> }>;
}

const experiments: Record<string, Experiment> = {
  jitter: {
    describe: "Brooker's OCC simulation: N clients, backoff with no / equal / full / decorrelated jitter (virtual time)",
    options: ['clients', 'runs', 'seed', 'baseMs', 'capMs', 'netMeanMs', 'netSdMs'],
    async run(options) {
      const result = await runJitter(options);
      return { table: jitterTable(result), figures: jitterFigures(result) };
    },
  },
  amplification: {
    describe: 'user → A → B → C over local HTTP, C down: retries at every layer / top only / top with a retry budget',
    options: ['requests', 'warmup', 'concurrency', 'maxAttempts', 'budgetRatio', 'budgetMinRetriesPerSecond'],
    async run(options) {
      const result = await runAmplification(options);
      return { table: amplificationTable(result), figures: amplificationFigures(result) };
    },
  },
};

function usage(): string {
  return [
    'usage: npm run experiment -- <name> [--json] [--option=value ...]',
    ...Object.entries(experiments).map(([name, e]) => `  ${name.padEnd(14)} ${e.describe}\n  ${''.padEnd(14)} options: ${e.options.join(', ')}`),
  ].join('\n');
}

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith('--'));
const json = args.includes('--json');
const experiment = name === undefined ? undefined : experiments[name];
if (experiment === undefined) {
  console.error(name === undefined ? usage() : `unknown experiment "${name}"\n${usage()}`);
  process.exit(2);
}

const options: Record<string, number> = {};
for (const arg of args) {
  const match = /^--([A-Za-z]+)=(.+)$/.exec(arg);
  if (match === null) continue;
  const [, key = '', raw = ''] = match;
  const value = Number(raw);
  if (!experiment.options.includes(key) || !Number.isFinite(value)) {
    console.error(`${name}: bad option ${arg} (options: ${experiment.options.join(', ')})`);
    process.exit(2);
  }
  options[key] = value;
}

const started = performance.now();
const { table, figures } = await experiment.run(options);
if (!json) {
  console.log(table);
  console.log('');
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s wall clock)`);
}
console.log(JSON.stringify({ ...figures, node: process.version }));
