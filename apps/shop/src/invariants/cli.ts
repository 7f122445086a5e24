/**
 * `npm run check:invariants` — checks DESIGN.md §9's invariants against a
 * running shop (either topology) through its internal HTTP routes.
 *
 *   --url <base>            the shop (or the gateway), default $SHOP_URL or http://127.0.0.1:3000
 *   --internal-key <key>    default $SHOP_INTERNAL_KEY
 *   --settle-ms <ms>        how long to wait for sagas in flight to finish, default 30000
 *   --orders-url, --payments-url, --inventory-url <base>   a module not at <url>/api/<module>
 *   --json                  print the report as JSON
 *
 * Exit 0: every invariant holds. 1: violations (each printed). 2: the check could not run.
 */
import { parseArgs } from 'node:util';
import { formatReport, runInvariantCheck, type CheckedModule, type InvariantTarget } from './invariants.js';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      'internal-key': { type: 'string' },
      'settle-ms': { type: 'string' },
      'orders-url': { type: 'string' },
      'payments-url': { type: 'string' },
      'inventory-url': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write('usage: check:invariants [--url URL] [--internal-key KEY] [--settle-ms MS] [--orders-url|--payments-url|--inventory-url URL] [--json]\n');
    return 0;
  }
  const url = values.url ?? process.env.SHOP_URL ?? 'http://127.0.0.1:3000';
  const internalKey = values['internal-key'] ?? process.env.SHOP_INTERNAL_KEY ?? '';
  if (internalKey === '') {
    process.stderr.write('check:invariants: the internal key is required (--internal-key or SHOP_INTERNAL_KEY)\n');
    return 2;
  }
  const settle = Number(values['settle-ms'] ?? '30000');
  if (!Number.isInteger(settle) || settle < 0) {
    process.stderr.write(`check:invariants: --settle-ms must be a non-negative integer, got ${values['settle-ms']}\n`);
    return 2;
  }
  const modules: Partial<Record<CheckedModule, string>> = {};
  for (const m of ['orders', 'payments', 'inventory'] as const) {
    const v = values[`${m}-url`];
    if (v !== undefined) modules[m] = v;
  }
  const target: InvariantTarget = { url, internalKey, modules };
  const report = await runInvariantCheck(target, { settleTimeoutMs: settle });
  process.stdout.write(`${values.json === true ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
  return report.violations.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`check:invariants: could not check: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
