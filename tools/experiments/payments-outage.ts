/**
 * Experiment `payments-outage`: the shop under steady order placement while
 * its payments module fails for `outageS` seconds (default 30).
 *
 * A monolith shop in a child process (temp dir, telemetry on) takes orders
 * from `users` users at `rate` per second through three phases — baseline,
 * outage (a fault rule answers 503 to every request of the payments module,
 * switched through the shop's `/admin/faults`), recovery — run by the
 * scenario runner (tools/scenario), which samples `/metrics` and `/slo`.
 * Then every accepted order is followed to its final state, the invariant
 * checker runs, and each order is attributed to the phase in which it was
 * created. Figures: per phase, orders confirmed / cancelled (compensated) and
 * whether a cancelled order kept a charge; HTTP goodput and p99; the SLOs'
 * budget spent and alerts; the payments breaker; charge attempts per order;
 * time to recover (HTTP, and by orders confirming again); the invariants.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInvariantCheck, ShopReader, type InvariantReport } from '../../apps/shop/src/invariants/invariants.js';
import type { OrderOutcomes } from '../load/shop.js';
import { writeReport, bands as faultBands, charts as scenarioCharts, type Chart } from '../scenario/markdown.js';
import { timeToRecover, type ScenarioReport } from '../scenario/report.js';
import { runScenario } from '../scenario/runner.js';
import { Sampler, type AlertRecord, type Snapshot } from '../scenario/sampler.js';
import { parseScenario } from '../scenario/scenario.js';
import { startShopProcess } from '../scenario/shop-process.js';
import { lineChart } from '../scenario/svg.js';
import { prepareWorkload } from '../scenario/workloads.js';
import type { ExperimentDoc } from './registry.js';

export interface PaymentsOutageOptions {
  /** Seconds of steady load before the outage, during it, after it. Defaults 20, 30, 40. */
  baselineS?: number;
  outageS?: number;
  recoveryS?: number;
  /** Orders offered per second. Default 20. */
  rate?: number;
  /** Users placing them. Default 10. */
  users?: number;
  /** The load generator's seed. Default 1. */
  seed?: number;
  /** 1: live progress on stderr; 0: none. Default: when stderr is a terminal. */
  progress?: number;
  /** Write the scenario report (report.json, report.md, charts) and summary.md here. */
  outDir?: string;
}

export interface PhaseOrders {
  phase: string;
  startMs: number;
  durationMs: number;
  /** Orders created (accepted, 202) in the phase, by their final status. */
  placed: number;
  confirmed: number;
  cancelled: number;
  /** Not terminal when the experiment stopped waiting. */
  open: number;
  /** Cancelled orders whose charges were not all refunded (should be 0). */
  cancelledWithChargeKept: number;
  /** Cancelled orders that had been charged and were refunded by the compensation. */
  chargedThenRefunded: number;
  /** HTTP figures of the phase (every POST /api/orders). */
  goodput: number;
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
  /** Charge attempts (POST /api/payments/charges served) per order placed in the phase. */
  chargeAttemptsPerOrder: number | null;
}

export interface SloFigures {
  name: string;
  objective: number;
  /** Budget fraction spent from the run's start until every order had settled (the sagas that end late count too). */
  budgetSpent: number | null;
  /** Bad events counted in each phase, and after the load ended (sagas settling). */
  badByPhase: number[];
  badAfterRun: number;
  /** Every alert fired from the run's start until the orders settled. */
  alerts: { severity: string; firedAtS: number; resolvedAtS: number | null }[];
}

export interface PaymentsOutageResult {
  options: Required<Omit<PaymentsOutageOptions, 'outDir' | 'progress'>>;
  phases: PhaseOrders[];
  outcomes: OrderOutcomes;
  /** Seconds from the outage's end until orders (by creation time) confirm again as in the baseline; null: not within the run. */
  ordersRecoveredAfterS: number | null;
  /** The same on HTTP answers (POST /api/orders goodput). */
  httpRecoveredAfterS: number | null;
  /** Orders per creation second: confirmed, cancelled. */
  ordersTimeline: { tS: number; confirmed: number; cancelled: number }[];
  slos: SloFigures[];
  /** The payments client's breaker: transitions, calls it refused, when it first opened and last closed (s from the start), and how long after the outage's end it closed. */
  breaker: { policy: string; transitions: number; rejections: number; openedAtS: number | null; closedAtS: number | null; closedAfterOutageS: number | null } | null;
  fault: { matched: number; injected: number } | null;
  invariants: { holds: boolean; violations: string[]; quiescent: boolean; counts: InvariantReport['counts'] };
  report: ScenarioReport;
  files?: { json: string; markdown: string; charts: string[]; summary: string };
}

const r3 = (n: number): number => Math.round(n * 1000) / 1000;
const BREAKER = 'orders-payments.breaker';

/** The scenario, as a file would say it (tools/scenario/scenarios/payments-outage.yaml is the long form). */
export function paymentsOutageScenario(o: { baselineS: number; outageS: number; recoveryS: number; rate: number; users: number; seed: number }): string {
  return `name: payments-outage
description: ${o.rate} orders/s from ${o.users} users; every request to the payments module answers 503 for ${o.outageS} s.
maxRate: ${Math.max(1, o.rate)}
seed: ${o.seed}
workload: { type: shop, users: ${o.users}, mix: { placeOrder: 1 }, restock: 1000000 }
faults:
  payments-down: { kind: error, direction: inbound, match: { module: payments }, status: 503 }
hops:
  - { name: charge attempts per order, from: POST /api/orders, to: POST /api/payments/charges }
  - { name: refunds per order, from: POST /api/orders, to: POST /api/payments/charges/:id/refund }
  - { name: releases per order, from: POST /api/orders, to: POST /api/inventory/reservations/:id/release }
phases:
  - { name: baseline, duration: ${o.baselineS}s, rate: ${o.rate} }
  - { name: outage, duration: ${o.outageS}s, rate: ${o.rate}, faults: [payments-down] }
  - { name: recovery, duration: ${o.recoveryS}s, rate: ${o.rate} }
`;
}

export async function runPaymentsOutage(options: PaymentsOutageOptions = {}): Promise<PaymentsOutageResult> {
  const o = {
    baselineS: options.baselineS ?? 20,
    outageS: options.outageS ?? 30,
    recoveryS: options.recoveryS ?? 40,
    rate: options.rate ?? 20,
    users: options.users ?? 10,
    seed: options.seed ?? 1,
  };
  const scenario = parseScenario(paymentsOutageScenario(o), { file: 'payments-outage (experiment)' });
  const shop = await startShopProcess();
  try {
    const target = { url: shop.url, internalKey: shop.internalKey };
    const prepared = await prepareWorkload(scenario.workload, shop.url, { internalKey: shop.internalKey });
    const progress = options.progress === undefined ? process.stderr.isTTY : options.progress === 1;
    const run = await runScenario(scenario, { target: shop.url, internalKey: shop.internalKey, workload: prepared, progress });
    if (!run.faultsCleared) throw new Error('payments-outage: the fault could not be cleared');
    const outcomes = await prepared.shop!.waitForOrders({ timeoutMs: 120_000 });
    const check = await runInvariantCheck(target, { settleTimeoutMs: 60_000 });
    const reader = new ShopReader(target);
    const [orders, charges] = await Promise.all([reader.orders(), reader.charges()]);
    // The SLOs once every saga has ended: a checkout that finished after the load still counts.
    const slo = new Sampler({ metrics: [], slo: [shop.url], intervalMs: 1_000 });
    const settled = await slo.snapshot();
    const alerts = await slo.alerts(Date.parse(run.report.startedAt) - 1_000);
    const result = analyse(run.report, o, orders, charges, outcomes, check, { snapshot: settled, alerts });
    if (options.outDir !== undefined) {
      const files = writeReport(run.report, options.outDir, [ordersChart(result)]);
      const summary = join(options.outDir, 'summary.md');
      writeFileSync(summary, `${paymentsOutageTable(result)}\n\n\`\`\`json\n${JSON.stringify(paymentsOutageFigures(result))}\n\`\`\`\n`);
      result.files = { ...files, summary };
    }
    return result;
  } finally {
    await shop.close();
  }
}

type OrderRow = Awaited<ReturnType<ShopReader['orders']>>[number];
type ChargeRow = Awaited<ReturnType<ShopReader['charges']>>[number];

function analyse(
  report: ScenarioReport,
  o: PaymentsOutageResult['options'],
  orders: readonly OrderRow[],
  charges: readonly ChargeRow[],
  outcomes: OrderOutcomes,
  check: InvariantReport,
  settled: { snapshot: Snapshot; alerts: AlertRecord[] },
): PaymentsOutageResult {
  const t0 = Date.parse(report.startedAt);
  const phaseOf = (createdAt: number): number => {
    const t = createdAt - t0;
    let index = 0;
    report.phases.forEach((p, i) => {
      if (t >= p.startMs) index = i;
    });
    return index;
  };
  const kept = new Map<string, number>();
  const refunded = new Set<string>();
  for (const c of charges) {
    if (c.orderId === null) continue;
    kept.set(c.orderId, (kept.get(c.orderId) ?? 0) + c.charged - c.refunded);
    if (c.charged > 0 && c.refunded >= c.charged) refunded.add(c.orderId);
  }
  const hop = report.hops.find((h) => h.to === 'POST /api/payments/charges');
  const phases: PhaseOrders[] = report.phases.map((p, i) => {
    const http = p.byKind['place-order'];
    return {
      phase: p.name,
      startMs: p.startMs,
      durationMs: p.durationMs,
      placed: 0,
      confirmed: 0,
      cancelled: 0,
      open: 0,
      cancelledWithChargeKept: 0,
      chargedThenRefunded: 0,
      goodput: p.goodput,
      errorRate: p.errorRate,
      p50Ms: http?.p50 ?? p.latency.p50,
      p99Ms: http?.p99 ?? p.latency.p99,
      chargeAttemptsPerOrder: hop?.perRequest[i] ?? null,
    };
  });
  const bucketMs = report.scenario.intervalMs;
  const buckets = new Map<number, { confirmed: number; cancelled: number }>();
  for (const order of orders) {
    const ph = phases[phaseOf(order.createdAt)];
    if (ph === undefined) continue;
    ph.placed++;
    const b = Math.floor(Math.max(0, order.createdAt - t0) / bucketMs) * bucketMs;
    const bucket = buckets.get(b) ?? { confirmed: 0, cancelled: 0 };
    buckets.set(b, bucket);
    if (order.status === 'CONFIRMED') {
      ph.confirmed++;
      bucket.confirmed++;
    } else if (order.status === 'CANCELLED') {
      ph.cancelled++;
      bucket.cancelled++;
      if ((kept.get(order.orderId) ?? 0) !== 0) ph.cancelledWithChargeKept++;
      if (refunded.has(order.orderId)) ph.chargedThenRefunded++;
    } else {
      ph.open++;
      bucket.cancelled++;
    }
  }
  const ordersTimeline = [...buckets.entries()].sort(([a], [b]) => a - b).map(([t, v]) => ({ tS: t / 1000, ...v }));

  const outage = report.phases[1];
  const baseline = report.phases[0];
  let ordersRecoveredAfterS: number | null = null;
  if (outage !== undefined && baseline !== undefined) {
    const faultEndMs = outage.startMs + outage.durationMs;
    const rec = timeToRecover({
      buckets: ordersTimeline.map((b) => ({ tMs: b.tS * 1000, ok: b.confirmed, failed: b.cancelled })),
      intervalMs: bucketMs,
      baseline: { fromMs: 0, toMs: outage.startMs },
      faultEndMs,
      endMs: report.durationMs,
      spec: report.recovery.thresholds,
    });
    ordersRecoveredAfterS = rec.recoveredAfterMs === null ? null : r3(rec.recoveredAfterMs / 1000);
  }

  const rel = (at: number): number => r3(Math.max(0, at - t0) / 1000);
  const slos: SloFigures[] = report.slos.map((s) => {
    const end = settled.snapshot.slos[s.name];
    const badByPhase = s.phases.map((p) => p.bad);
    const counted = (s.atStart?.bad ?? 0) + badByPhase.reduce((a, b) => a + b, 0);
    return {
      name: s.name,
      objective: s.objective,
      budgetSpent: end === undefined || s.atStart === null ? s.budgetSpent : r3(s.atStart.remaining - end.remainingFraction),
      badByPhase,
      badAfterRun: end === undefined ? 0 : Math.max(0, end.badEvents - counted),
      alerts: settled.alerts.filter((a) => a.slo === s.name).map((a) => ({ severity: a.severity, firedAtS: rel(a.firedAt), resolvedAtS: a.resolvedAt === undefined ? null : rel(a.resolvedAt) })),
    };
  });
  const br = report.breakers.find((b) => b.policy === BREAKER);
  const openedAt = br?.changes.find((c) => c.to === 1)?.atMs;
  const closedAt = br?.changes.filter((c) => c.to === 0).at(-1)?.atMs;
  const fault = report.faults.find((f) => f.name === 'payments-down')?.stats ?? null;

  return {
    options: o,
    phases,
    outcomes,
    ordersRecoveredAfterS,
    httpRecoveredAfterS: report.recovery.recoveredAfterMs === null ? null : r3(report.recovery.recoveredAfterMs / 1000),
    ordersTimeline,
    slos,
    breaker:
      br === undefined
        ? null
        : {
            policy: BREAKER,
            transitions: br.transitions.reduce((a, b) => a + b, 0),
            rejections: br.rejections.reduce((a, b) => a + b, 0),
            openedAtS: openedAt === undefined ? null : r3(openedAt / 1000),
            closedAtS: closedAt === undefined ? null : r3(closedAt / 1000),
            closedAfterOutageS: closedAt === undefined || outage === undefined ? null : r3((closedAt - outage.startMs - outage.durationMs) / 1000),
          },
    fault,
    invariants: {
      holds: check.violations.length === 0,
      violations: check.violations.map((v) => `[${v.invariant}] ${v.subject}: ${v.message}`),
      quiescent: check.quiescent,
      counts: check.counts,
    },
    report,
  };
}

function ordersChart(result: PaymentsOutageResult): Chart {
  const half = result.report.scenario.intervalMs / 2000;
  return {
    file: 'orders.svg',
    title: 'Orders by creation time and final state',
    svg: lineChart({
      title: 'payments-outage: orders per second by creation time and final state',
      xLabel: 'time the order was placed (s)',
      yLabel: 'orders per second',
      bands: faultBands(result.report),
      series: [
        { name: 'confirmed', points: result.ordersTimeline.map((b) => [b.tS + half, b.confirmed] as const) },
        { name: 'cancelled (compensated)', points: result.ordersTimeline.map((b) => [b.tS + half, b.cancelled] as const) },
      ],
    }),
  };
}

/** Charts for docs/experiments: file name → SVG. */
export function paymentsOutageCharts(result: PaymentsOutageResult): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of [ordersChart(result), ...scenarioCharts(result.report)]) {
    if (c.file === 'attempts.svg') continue;
    out[`payments-outage-${c.file}`] = c.svg;
  }
  return out;
}

const sloKey = (name: string): string => name.replaceAll('-', '_');

export function paymentsOutageFigures(result: PaymentsOutageResult): Record<string, number | string | null> {
  const f: Record<string, number | string | null> = {
    experiment: 'payments-outage',
    rate: result.options.rate,
    users: result.options.users,
    baseline_s: result.options.baselineS,
    outage_s: result.options.outageS,
    recovery_s: result.options.recoveryS,
  };
  for (const p of result.phases) {
    f[`${p.phase}_placed`] = p.placed;
    f[`${p.phase}_confirmed`] = p.confirmed;
    f[`${p.phase}_cancelled`] = p.cancelled;
    f[`${p.phase}_goodput`] = r3(p.goodput);
    f[`${p.phase}_p99_ms`] = p.p99Ms;
    f[`${p.phase}_charge_attempts_per_order`] = p.chargeAttemptsPerOrder;
  }
  f.cancelled_with_charge_kept = result.phases.reduce((n, p) => n + p.cancelledWithChargeKept, 0);
  f.orders_recovered_after_s = result.ordersRecoveredAfterS;
  f.http_recovered_after_s = result.httpRecoveredAfterS;
  for (const s of result.slos) {
    f[`slo_${sloKey(s.name)}_budget_spent`] = s.budgetSpent;
    f[`slo_${sloKey(s.name)}_alerts`] = s.alerts.length;
  }
  f.breaker_transitions = result.breaker?.transitions ?? 0;
  f.breaker_opened_at_s = result.breaker?.openedAtS ?? null;
  f.breaker_closed_at_s = result.breaker?.closedAtS ?? null;
  f.breaker_closed_after_outage_s = result.breaker?.closedAfterOutageS ?? null;
  f.fault_injected = result.fault?.injected ?? null;
  f.invariant_violations = result.invariants.violations.length;
  return f;
}

const pct = (x: number | null): string => (x === null ? '—' : `${r3(x * 100)} %`);

export function paymentsOutageTable(result: PaymentsOutageResult): string {
  const o = result.options;
  const lines = [
    `payments-outage: ${o.rate} orders/s from ${o.users} users; payments answer 503 for ${o.outageS} s (baseline ${o.baselineS} s, recovery ${o.recoveryS} s)`,
    '',
    '| phase (by order creation) | placed | confirmed | cancelled | cancelled with a charge kept | charged then refunded | POST /orders goodput/s | p50 ms | p99 ms | charge attempts / order |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...result.phases.map(
      (p) =>
        `| ${p.phase} | ${p.placed} | ${p.confirmed} | ${p.cancelled}${p.open > 0 ? ` (+${p.open} open)` : ''} | ${p.cancelledWithChargeKept} | ${p.chargedThenRefunded} | ${r3(p.goodput)} | ${p.p50Ms} | ${p.p99Ms} | ${p.chargeAttemptsPerOrder ?? '—'} |`,
    ),
    '',
    '| SLO | objective | budget spent (run + settling) | bad events: baseline / outage / recovery / after | alerts (s from the start) |',
    '| --- | ---: | ---: | ---: | --- |',
    ...result.slos.map(
      (s) =>
        `| ${s.name} | ${pct(s.objective)} | ${pct(s.budgetSpent)} | ${[...s.badByPhase, s.badAfterRun].join(' / ')} | ${s.alerts.map((a) => `${a.severity} at ${a.firedAtS}${a.resolvedAtS === null ? '' : ` (resolved ${a.resolvedAtS})`}`).join(', ') || 'none'} |`,
    ),
    '',
    `orders: ${result.outcomes.placed} accepted, ${result.outcomes.confirmed} confirmed, ${result.outcomes.cancelled} cancelled (failed steps: ${JSON.stringify(result.outcomes.failedSteps)}), ${result.outcomes.notTerminal} not terminal; refused ${JSON.stringify(result.outcomes.refused)}, unanswered ${result.outcomes.unanswered}`,
    `time to recover: orders confirm again ${result.ordersRecoveredAfterS ?? 'never'}${result.ordersRecoveredAfterS === null ? '' : ' s'} after the outage; HTTP goodput ${result.httpRecoveredAfterS ?? 'never'}${result.httpRecoveredAfterS === null ? '' : ' s'}`,
    `breaker ${result.breaker?.policy ?? BREAKER}: ${result.breaker === null ? 'never left closed' : `${result.breaker.transitions} transitions, ${result.breaker.rejections} calls refused, first opened at ${result.breaker.openedAtS ?? '—'} s, last closed at ${result.breaker.closedAtS ?? '—'} s (${result.breaker.closedAfterOutageS ?? '—'} s after the outage)`}; fault matched ${result.fault?.matched ?? '—'}, injected ${result.fault?.injected ?? '—'}`,
    `invariants: ${result.invariants.holds ? 'all hold' : `${result.invariants.violations.length} VIOLATED: ${result.invariants.violations.slice(0, 5).join('; ')}`} (${result.invariants.counts.orders} orders, ${result.invariants.counts.charges} charges${result.invariants.quiescent ? '' : ', NOT quiescent'})`,
  ];
  if (result.files !== undefined) lines.push(`report: ${result.files.markdown}`);
  return lines.join('\n');
}

export const paymentsOutageDoc: ExperimentDoc<PaymentsOutageResult> = {
  title: 'the shop while payments fail',
  expectation:
    'Orders keep being accepted (202) throughout: placement does not depend on payments, so the order-placement SLO does not move. The CreateOrder saga charges in the background: during the outage its charge attempts fail, the `orders-payments` breaker opens, and orders whose charge gives up are compensated — stock released, the (possibly) taken charge refunded — ending CANCELLED with no charge kept; their compensations can only finish once payments answer again. Orders whose retries outlast the outage confirm. Sagas that end more than 10 s after placement burn the checkout-completion SLO. After the outage, orders confirm again once the breaker closes; every invariant holds.',
  setup:
    'A monolith shop in a child process (SQLite in a temp dir, telemetry on). The scenario runner (tools/scenario) offers `rate` orders/s (open model) from `users` users for `baselineS` s, then puts the fault rule `{ kind: error, direction: inbound, match: { module: payments }, status: 503 }` through `/admin/faults` for `outageS` s, then deletes it for `recoveryS` s, sampling `/metrics` and `/slo` every second. Afterwards every accepted order is followed to CONFIRMED or CANCELLED, each is attributed to the phase of its creation time, charges are matched to orders, and the invariant checker runs.',
  comparison: (r) => {
    const [, outage, recovery] = r.phases;
    const checkout = r.slos.find((s) => s.name === 'checkout-completion');
    const placement = r.slos.find((s) => s.name === 'order-placement-availability');
    const kept = r.phases.reduce((n, p) => n + p.cancelledWithChargeKept, 0);
    return [
      `Of the ${outage?.placed ?? 0} orders placed during the outage, ${outage?.cancelled ?? 0} were compensated (CANCELLED at the charge step) and ${outage?.confirmed ?? 0} confirmed once payments answered again; ${kept === 0 ? 'no cancelled order kept a charge' : `**${kept} cancelled orders kept a charge**`}.`,
      `Of the ${recovery?.placed ?? 0} orders placed after it, ${recovery?.confirmed ?? 0} confirmed; the payments breaker closed ${r.breaker?.closedAfterOutageS ?? '—'} s after the outage ended, and orders (by creation time) were back to the baseline ${r.ordersRecoveredAfterS ?? 'never'}${r.ordersRecoveredAfterS === null ? '' : ' s'} after it.`,
      `The order-placement SLO spent ${pct(placement?.budgetSpent ?? null)} of its budget (placement does not wait for the charge); checkout-completion spent ${pct(checkout?.budgetSpent ?? null)}${checkout !== undefined && checkout.alerts.length > 0 ? `, and its ${checkout.alerts.map((a) => a.severity).join(' and ')} alert${checkout.alerts.length > 1 ? 's' : ''} fired` : ''}.`,
      `Invariants: ${r.invariants.holds ? 'every one holds' : `${r.invariants.violations.length} violated`}.`,
    ].join(' ');
  },
};
