/**
 * The load generator on the command line. Live progress on stderr; a table
 * per phase on stdout, and as the LAST line one JSON object of figures
 * (`--json` prints that line only).
 *
 *   npm run load -- --target=http://127.0.0.1:3000 --rate=100 --duration=30s
 *   npm run load -- --phases=warm:10s@50,steady:30s@200,ramp:20s@200..400 --workload=get:/health/ready
 *   node --import tsx --conditions=bulwark:source tools/load/cli.ts --help
 *
 * Ctrl-C stops the arrivals, waits for the outstanding requests and prints
 * the figures so far.
 */
import { pathToFileURL } from 'node:url';
import { LoadPlanError, LoadTargetError, runLoad } from './load.js';
import { parseDuration, parsePhases } from './plan.js';
import { prepareShopWorkload, type OrderOutcomes, type PaymentMethod, type ShopMix } from './shop.js';
import type { LoadPhase, LoadResult, PhaseStats } from './types.js';

export const usage = `usage: npm run load -- [options]
  --target=URL          origin of the target, loopback only (default http://127.0.0.1:3000)
  --rate=N --duration=T one phase "steady" at N arrivals/s for T (30s, 500ms, 2m; default 10s)
  --phases=LIST         phases instead: name:T@rate or name:T@from..to, comma-separated,
                        e.g. warm:10s@50,steady:30s@200,ramp:20s@200..400
  --workload=W          shop (default): the shop's API with real users, tokens, idempotency keys
                        get:/path: GET one path
  --users=N             shop: users to register or log in (default 10)
  --mix=LIST            shop: weights, e.g. placeOrder:1,productPage:3,browse:6,myOrders:0
  --payments=LIST       shop: payment method weights, e.g. card_ok:9,card_declined:1
  --internal-key=K      shop: the internal key (default $SHOP_INTERNAL_KEY), for --restock
  --restock=N           shop: set every SKU's stock to N before the run
  --wait=T              shop: how long to follow the placed orders to their outcome (default 30s; 0 = not)
  --max-in-flight=N     outstanding requests at most; beyond, arrivals are dropped (default 1000)
  --connections=N       connections to the target (default 64)
  --timeout=T           per-request timeout (default 10s)
  --max-requests=N      stop after N arrivals
  --max-rate=N          highest rate accepted (default 5000/s)
  --interval=T          progress and timeline interval (default 1s)
  --seed=N              seed of the workload's draws (default 1)
  --json                print the JSON line only (progress still goes to stderr)
  --quiet               no live progress`;

export interface CliOptions {
  target: string;
  phases: LoadPhase[];
  workload: { type: 'shop' } | { type: 'get'; path: string };
  users: number;
  mix?: ShopMix;
  payments?: Partial<Record<PaymentMethod, number>>;
  internalKey?: string;
  restock?: number;
  waitMs: number;
  maxInFlight?: number;
  connections?: number;
  timeoutMs?: number;
  maxRequests?: number;
  maxRate?: number;
  intervalMs?: number;
  seed: number;
  json: boolean;
  quiet: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

function weights(text: string, flag: string, keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [key = '', value = ''] = part.split(':');
    const n = Number(value);
    if (!keys.includes(key) || value === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${flag}: bad entry "${part}" (keys: ${keys.join(', ')}; weights >= 0)`);
    out[key] = n;
  }
  return out;
}

/** Parses the command line (without `node` and the script). Throws UsageError. */
export function parseCli(argv: readonly string[], env: Record<string, string | undefined> = process.env): CliOptions {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new UsageError(`unexpected argument "${arg}"`);
    flags.set(m[1]!, m[2] ?? 'true');
  }
  const take = (name: string): string | undefined => {
    const v = flags.get(name);
    flags.delete(name);
    return v;
  };
  const num = (name: string, integer = false): number | undefined => {
    const v = take(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name}: not ${integer ? 'an integer' : 'a number'}: "${v}"`);
    return n;
  };
  const duration = (name: string): number | undefined => {
    const v = take(name);
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (ms === undefined) throw new UsageError(`--${name}: not a duration (30s, 500ms, 2m): "${v}"`);
    return ms;
  };

  const phasesText = take('phases');
  const rate = num('rate');
  const durationMs = duration('duration');
  let phases: LoadPhase[];
  if (phasesText !== undefined) {
    if (rate !== undefined || durationMs !== undefined) throw new UsageError('give --phases or --rate/--duration, not both');
    phases = parsePhases(phasesText);
  } else {
    if (rate === undefined) throw new UsageError('--rate (or --phases) is required');
    phases = [{ name: 'steady', durationMs: durationMs ?? 10_000, rate }];
  }

  const workloadText = take('workload') ?? 'shop';
  let workload: CliOptions['workload'];
  if (workloadText === 'shop') workload = { type: 'shop' };
  else if (workloadText.startsWith('get:/')) workload = { type: 'get', path: workloadText.slice(4) };
  else throw new UsageError(`--workload: "shop" or "get:/path", not "${workloadText}"`);

  const mix = take('mix');
  const payments = take('payments');
  const options: CliOptions = {
    target: take('target') ?? 'http://127.0.0.1:3000',
    phases,
    workload,
    users: num('users', true) ?? 10,
    waitMs: duration('wait') ?? 30_000,
    seed: num('seed') ?? 1,
    json: take('json') !== undefined,
    quiet: take('quiet') !== undefined,
  };
  if (mix !== undefined) options.mix = weights(mix, 'mix', ['placeOrder', 'productPage', 'browse', 'myOrders']);
  if (payments !== undefined) options.payments = weights(payments, 'payments', ['card_ok', 'card_declined', 'card_error']);
  const internalKey = take('internal-key') ?? env.SHOP_INTERNAL_KEY;
  if (internalKey !== undefined) options.internalKey = internalKey;
  const optional: [keyof CliOptions, number | undefined][] = [
    ['restock', num('restock', true)],
    ['maxInFlight', num('max-in-flight', true)],
    ['connections', num('connections', true)],
    ['timeoutMs', duration('timeout')],
    ['maxRequests', num('max-requests', true)],
    ['maxRate', num('max-rate')],
    ['intervalMs', duration('interval')],
  ];
  for (const [key, value] of optional) if (value !== undefined) Object.assign(options, { [key]: value });
  if (options.restock !== undefined && options.internalKey === undefined) throw new UsageError('--restock needs --internal-key (or SHOP_INTERNAL_KEY)');
  const unknown = [...flags.keys()];
  if (unknown.length > 0) throw new UsageError(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => `--${f}`).join(', ')}`);
  return options;
}

const ms = (n: number): string => (n >= 100 ? String(Math.round(n)) : String(Math.round(n * 100) / 100));
const counts = (r: Record<string, number>): string =>
  Object.entries(r)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ') || '—';

function phaseRow(p: PhaseStats): string {
  const l = p.latency;
  return `| ${p.name} | ${(p.durationMs / 1000).toFixed(1)} | ${p.scheduled} | ${p.offeredRate} | ${p.achievedRate} | ${p.ok} | ${p.failed} | ${p.dropped} | ${p.timedOut} | ${p.goodput} | ${(p.errorRate * 100).toFixed(2)} | ${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} |`;
}

export function resultTable(result: LoadResult, outcomes?: OrderOutcomes): string {
  const lines = [
    `load: ${result.target}, ${result.phases.length} phase(s), ${(result.durationMs / 1000).toFixed(1)} s, seed ${result.seed}; latency in ms from each arrival's intended time`,
    '',
    '| phase | s | scheduled | offered/s | achieved/s | ok | failed | dropped | timeouts | goodput/s | error % | p50 | p90 | p99 | p99.9 | max |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...result.phases.map(phaseRow),
    phaseRow({ ...result.total, name: '**total**' }),
    '',
    '| kind | sent | ok | failed | p50 | p99 | max |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...Object.entries(result.total.byKind).map(([kind, k]) => `| ${kind} | ${k.sent} | ${k.ok} | ${k.failed} | ${ms(k.latency.p50)} | ${ms(k.latency.p99)} | ${ms(k.latency.max)} |`),
    '',
    ...result.phases.map((p) => `${p.name}: statuses ${counts(p.statuses)}; network errors ${counts(p.networkErrors)}`),
  ];
  if (result.schedulerLag !== undefined) lines.push(`scheduler lag (issue time − intended time, part of every latency): p50 ${ms(result.schedulerLag.p50)} ms, p99 ${ms(result.schedulerLag.p99)} ms, max ${ms(result.schedulerLag.max)} ms`);
  if (outcomes !== undefined) {
    lines.push(
      `orders: ${outcomes.placed} accepted (202) -> ${outcomes.confirmed} confirmed, ${outcomes.cancelled} cancelled (${outcomes.compensated} compensated), ${outcomes.notTerminal} not terminal${outcomes.settled ? '' : ' (gave up waiting)'}; ` +
        `failed steps ${counts(outcomes.failedSteps)}; refused ${counts(outcomes.refused)}; ${outcomes.unanswered} unanswered`,
    );
  }
  return lines.join('\n');
}

const key = (name: string): string => name.replace(/[^A-Za-z0-9]+/g, '_').toLowerCase();

export function resultFigures(result: LoadResult, workload: string, outcomes?: OrderOutcomes): Record<string, number | string> {
  const t = result.total;
  const figures: Record<string, number | string> = {
    tool: 'load',
    target: result.target,
    workload,
    seed: result.seed,
    duration_ms: result.durationMs,
    scheduled: t.scheduled,
    offered_rate: t.offeredRate,
    achieved_rate: t.achievedRate,
    goodput: t.goodput,
    ok: t.ok,
    failed: t.failed,
    dropped: t.dropped,
    timed_out: t.timedOut,
    error_rate: t.errorRate,
    p50_ms: t.latency.p50,
    p90_ms: t.latency.p90,
    p99_ms: t.latency.p99,
    p999_ms: t.latency.p999,
    max_ms: t.latency.max,
  };
  for (const p of result.phases) {
    const k = key(p.name);
    Object.assign(figures, { [`${k}_scheduled`]: p.scheduled, [`${k}_goodput`]: p.goodput, [`${k}_error_rate`]: p.errorRate, [`${k}_p50_ms`]: p.latency.p50, [`${k}_p99_ms`]: p.latency.p99 });
  }
  if (result.schedulerLag !== undefined) figures.scheduler_lag_p99_ms = result.schedulerLag.p99;
  if (outcomes !== undefined) {
    Object.assign(figures, { orders_placed: outcomes.placed, orders_confirmed: outcomes.confirmed, orders_cancelled: outcomes.cancelled, orders_compensated: outcomes.compensated, orders_not_terminal: outcomes.notTerminal, orders_unanswered: outcomes.unanswered });
  }
  figures.node = process.version;
  return figures;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    return 0;
  }
  let cli: CliOptions;
  try {
    cli = parseCli(argv);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof LoadPlanError)) throw error;
    console.error(`load: ${error.message}\n${usage}`);
    return 2;
  }
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    console.error('\nload: stopping (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const shop =
      cli.workload.type === 'shop'
        ? await prepareShopWorkload({
            target: cli.target,
            users: cli.users,
            ...(cli.mix === undefined ? {} : { mix: cli.mix }),
            ...(cli.payments === undefined ? {} : { paymentMethods: cli.payments }),
            ...(cli.internalKey === undefined ? {} : { internalKey: cli.internalKey }),
            ...(cli.restock === undefined ? {} : { restock: cli.restock }),
          })
        : undefined;
    const path = cli.workload.type === 'get' ? cli.workload.path : '';
    const result = await runLoad({
      target: cli.target,
      phases: cli.phases,
      ...(shop === undefined ? { workload: () => ({ method: 'GET', path }) } : shop.loadOptions),
      seed: cli.seed,
      progress: !cli.quiet,
      signal: controller.signal,
      ...(cli.maxInFlight === undefined ? {} : { maxInFlight: cli.maxInFlight }),
      ...(cli.connections === undefined ? {} : { connections: cli.connections }),
      ...(cli.timeoutMs === undefined ? {} : { timeoutMs: cli.timeoutMs }),
      ...(cli.maxRequests === undefined ? {} : { maxRequests: cli.maxRequests }),
      ...(cli.maxRate === undefined ? {} : { maxRate: cli.maxRate }),
      ...(cli.intervalMs === undefined ? {} : { intervalMs: cli.intervalMs }),
    });
    let outcomes: OrderOutcomes | undefined;
    if (shop !== undefined && cli.waitMs > 0) {
      if (!cli.quiet) console.error(`load: following ${shop.orders.length} placed orders to their outcome (up to ${cli.waitMs / 1000} s)`);
      outcomes = await shop.waitForOrders({ timeoutMs: cli.waitMs });
    }
    if (!cli.json) {
      console.log(resultTable(result, outcomes));
      console.log('');
    }
    console.log(JSON.stringify(resultFigures(result, cli.workload.type === 'shop' ? 'shop' : `get:${path}`, outcomes)));
    return 0;
  } catch (error) {
    if (error instanceof LoadPlanError || error instanceof LoadTargetError) {
      console.error(`load: ${error.message}`);
      return 2;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
