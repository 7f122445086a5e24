/**
 * Runs one experiment and prints its table, then, as the LAST line, one JSON
 * object of figures (so runs can be tracked, like the benchmarks).
 *
 *   npm run experiment -- <name> [--json] [--quick] [--key=value ...]
 *   node --import tsx --conditions=bulwark:source tools/experiments/run.ts <name> [--json]
 *
 * `--json` prints the JSON line only; `--quick` runs the shortened form (about
 * the tests' sizes). Numeric options override an experiment's defaults, e.g.
 * `jitter --clients=50 --runs=3 --seed=7` or `metastable --afterS=60`. The
 * experiments are listed in ./registry.ts.
 */
import { experiments } from './registry.js';

function usage(): string {
  return [
    'usage: npm run experiment -- <name> [--json] [--quick] [--option=value ...]',
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

const options: Record<string, number> = args.includes('--quick') ? { ...experiment.quick } : {};
for (const arg of args) {
  if (arg === '--json' || arg === '--quick' || !arg.startsWith('--')) continue;
  const match = /^--([A-Za-z]+)=(.+)$/.exec(arg);
  const [, key = '', raw = ''] = match ?? [];
  const value = Number(raw);
  if (match === null || !experiment.options.includes(key) || !Number.isFinite(value)) {
    console.error(`${name}: bad option ${arg} (options: ${experiment.options.join(', ')})`);
    process.exit(2);
  }
  options[key] = value;
}

const started = performance.now();
const result = await experiment.run(options);
if (!json) {
  console.log(experiment.table(result));
  console.log('');
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s wall clock)`);
}
console.log(JSON.stringify({ ...experiment.figures(result), node: process.version }));
