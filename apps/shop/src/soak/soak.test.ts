/**
 * A soak sized for CI (issue #8): a monolith takes SOAK_ORDERS orders (default
 * 2,000) from an open-model load — arrivals on a fixed schedule at SOAK_RATE
 * per second, whatever the shop's answers, with a cap on POSTs in flight —
 * from several users with real tokens and Idempotency-Keys (some submits
 * repeated after the answer, some sent twice at once). Payments decline 10%
 * of charges, and mid-run the processor has an outage (`errorRate: 1` for
 * SOAK_OUTAGE_MS, default 3 s). Then every order settles and the invariant
 * checker (DESIGN.md §9) finds no violation.
 *
 * Timings — orders/s, p99 of `POST /orders` (202) and of order completion
 * (order row written → CONFIRMED/CANCELLED, server clock) — are printed as
 * diagnostics, never asserted.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { formatReport, runInvariantCheck, ShopReader } from '../invariants/invariants.js';
import { percentile, startTestShop, type Answer, type TestShop } from '../invariants/harness.js';

const ORDERS = Number(process.env.SOAK_ORDERS ?? 2_000);
const RATE = Number(process.env.SOAK_RATE ?? 100);
const OUTAGE_MS = Number(process.env.SOAK_OUTAGE_MS ?? 3_000);
// 2,000 orders at 100/s: a 20 s load phase; with the outage's tail (the orders→payments breaker re-opens for up to 30 s)
// and the 30 s saga deadline, about 50 s idle and under 90 s on the 2-core VM while other suites run.
const MAX_OUTSTANDING = 200;
/** How long a client keeps re-placing one order (same key) through transient refusals. */
const PLACE_BUDGET_MS = 30_000;
const USERS = 8;
const DECLINE_RATE = 0.1;
const SKUS = ['KB-001', 'MS-002', 'MN-003', 'HS-004', 'CB-005'];

let t: TestShop;
let tokens: string[];

/** A reproducible random source for the load's choices. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

before(async () => {
  t = await startTestShop(
    {
      telemetry: { enabled: false },
      payments: { latencyMs: 2, latencyJitterMs: 3, declineRate: DECLINE_RATE, errorRate: 0 },
      // A 30 s saga deadline bounds the run: an order not past its pivot by then is cancelled (compensated).
      orders: { sagaDeadlineMs: 30_000, stepAttemptTimeoutMs: 5_000 },
    },
    'shop-soak-',
  );
  for (const sku of SKUS) assert.equal((await t.api('PUT', `/api/inventory/stock/${sku}`, { internal: true, body: { available: 1_000_000 } })).status, 200);
  // LE-006 keeps its single unit: the orders that ask for it mostly find it gone.
  tokens = await Promise.all(Array.from({ length: USERS }, (_, i) => t.login(`soak-user-${i}`, `soak-password-${i}`, true)));
});

after(async () => {
  await t?.close();
});

describe('soak: the monolith under load, with declines and a payments outage, keeps every invariant', () => {
  it(`takes ${ORDERS} orders at ${RATE}/s and settles every one, with no invariant violated`, async (ctx) => {
    const random = rng(2026);
    const postMs: number[] = [];
    const idByKey = new Map<string, string>();
    const submitted: { key: string; token: string; body: unknown }[] = [];
    let retries = 0;
    let replays = 0;
    let concurrentDuplicates = 0;
    let outstanding = 0;
    let delayedArrivals = 0;
    let outage: { from: number; to: number } | undefined;
    const failures: string[] = [];

    /**
     * Places (or re-places) an order with its key until 202: the client's part of idempotency.
     * A refusal the shop marks as transient (503 while a breaker sheds, 409 in progress, 429) is
     * retried with backoff, honouring Retry-After, for up to PLACE_BUDGET_MS — a shop that sheds
     * load for a few seconds after the outage (its sagas' retries all resume at once) is doing its
     * job; what this test checks is that nothing is lost or doubled, not that nothing is shed.
     */
    async function place(key: string, token: string, body: unknown, measure: boolean): Promise<Answer> {
      const giveUpAt = performance.now() + PLACE_BUDGET_MS;
      for (let attempt = 0; ; attempt++) {
        const began = performance.now();
        let answer: Answer;
        try {
          answer = await t.api('POST', '/api/orders', { token, key, body, timeoutMs: 30_000 });
        } catch (error) {
          answer = { status: 0, headers: new Headers(), body: { error: String(error) } };
        }
        if (answer.status === 202) {
          if (measure) postMs.push(performance.now() - began);
          return answer;
        }
        const retryable = answer.status === 0 || answer.status === 409 || answer.status === 429 || answer.status >= 500;
        if (!retryable || performance.now() >= giveUpAt) throw new Error(`POST /api/orders (${key}): ${answer.status} after ${attempt + 1} attempt(s) ${JSON.stringify(answer.body)}`);
        retries++;
        const retryAfterS = Number(answer.headers.get('retry-after') ?? Number.NaN);
        const backoffMs = Math.min(1_000, 25 * 2 ** attempt) * (0.5 + random() / 2);
        await sleep(Number.isFinite(retryAfterS) ? Math.max(backoffMs, retryAfterS * 1_000) : backoffMs);
      }
    }

    async function arrival(i: number): Promise<void> {
      const token = tokens[i % USERS] as string;
      const lines = new Map<string, number>();
      const n = 1 + Math.floor(random() * 3);
      for (let k = 0; k < n; k++) {
        const sku = SKUS[Math.floor(random() * SKUS.length)] as string;
        lines.set(sku, (lines.get(sku) ?? 0) + 1 + Math.floor(random() * 3));
      }
      if (random() < 0.01) lines.set('LE-006', 1);
      const body = { items: [...lines].map(([sku, qty]) => ({ sku, qty })) };
      const key = randomUUID();
      submitted.push({ key, token, body });
      const roll = random();
      let answers: Answer[];
      if (roll < 0.02) {
        // Sent twice at once (a double click): one order; the second waits (409 in progress, retried) or is replayed.
        concurrentDuplicates++;
        answers = await Promise.all([place(key, token, body, true), place(key, token, body, false)]);
      } else {
        answers = [await place(key, token, body, true)];
        if (roll < 0.07) {
          // Resubmitted after the answer (a lost response): the same answer, replayed.
          const again = await place(key, token, body, false);
          assert.equal(again.headers.get('idempotent-replayed'), 'true');
          replays++;
          answers.push(again);
        }
      }
      const ids = new Set(answers.map((a) => a.body.orderId as string));
      assert.equal(ids.size, 1, `one order per key, got ${[...ids].join(', ')}`);
      idByKey.set(key, [...ids][0] as string);
    }

    const began = performance.now();
    const running: Promise<void>[] = [];
    for (let i = 0; i < ORDERS; i++) {
      const due = began + (i * 1_000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      while (outstanding >= MAX_OUTSTANDING) {
        delayedArrivals++;
        await sleep(5);
      }
      if (i === Math.floor(ORDERS / 2)) {
        // The processor goes down for a while, then comes back.
        assert.equal((await t.api('PUT', '/api/payments/simulator', { internal: true, body: { errorRate: 1 } })).status, 200);
        const from = Date.now();
        outage = { from, to: from + OUTAGE_MS };
        running.push(
          sleep(OUTAGE_MS).then(async () => {
            assert.equal((await t.api('PUT', '/api/payments/simulator', { internal: true, body: { errorRate: 0 } })).status, 200);
            if (outage !== undefined) outage.to = Date.now();
          }),
        );
      }
      outstanding++;
      running.push(
        arrival(i)
          .catch((error: unknown) => void failures.push(String(error)))
          .finally(() => void outstanding--),
      );
    }
    await Promise.all(running);
    const submittedMs = performance.now() - began;
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} arrival(s) failed`);
    assert.equal(idByKey.size, ORDERS);
    assert.equal(new Set(idByKey.values()).size, ORDERS, 'one order per idempotency key');

    // Every order settles; then the invariants.
    const report = await runInvariantCheck(t.target, { settleTimeoutMs: 120_000, pollIntervalMs: 250 });
    ctx.diagnostic(formatReport(report));
    assert.deepEqual(report.violations, []);
    assert.equal(report.quiescent, true);
    assert.deepEqual(report.inFlight, []);
    assert.deepEqual(report.stuck, []);

    // Outcomes make sense: every order terminal; confirmed ones, and cancellations for each cause.
    const orders = await new ShopReader(t.target).orders();
    assert.equal(orders.length, ORDERS);
    for (const o of orders) assert.ok(o.status === 'CONFIRMED' || o.status === 'CANCELLED', `${o.orderId} is ${o.status}`);
    const confirmed = orders.filter((o) => o.status === 'CONFIRMED');
    const cancelled = orders.filter((o) => o.status === 'CANCELLED');
    const reason = (o: (typeof orders)[number]) => String((o as { failureReason?: string | null }).failureReason ?? '');
    const declined = cancelled.filter((o) => /chargePayment/.test(reason(o)) && /declin/i.test(reason(o)));
    const unavailable = cancelled.filter((o) => /chargePayment/.test(reason(o)) && !/declin/i.test(reason(o)));
    const outOfStock = cancelled.filter((o) => /reserveInventory/.test(reason(o)) && /\(409\)/.test(reason(o)));
    const other = cancelled.length - declined.length - unavailable.length - outOfStock.length;
    assert.ok(confirmed.length > 0, 'some orders confirmed');
    assert.ok(declined.length > 0, 'some orders cancelled by a decline');
    // The outage either cancels the orders charging through it (retries spent) or, once the orders→payments breaker
    // opens, holds them until it half-opens (they then confirm, or meet their deadline): how many of each is timing,
    // and so are cancellations by deadline when the machine is loaded — reported below, not asserted.
    const inOutage = (o: (typeof orders)[number]) => outage !== undefined && o.createdAt >= outage.from - 10_000 && o.createdAt <= outage.to + 40_000;

    // The figures the issue asks for (diagnostics, not assertions).
    const completionMs = orders.map((o) => o.updatedAt - o.createdAt);
    const firstCreated = Math.min(...orders.map((o) => o.createdAt));
    const lastSettled = Math.max(...orders.map((o) => o.updatedAt));
    const confirmedAfterOutage = outage === undefined ? 0 : confirmed.filter((o) => o.createdAt > (outage?.to ?? 0)).length;
    const figures = {
      orders: ORDERS,
      targetRate: RATE,
      submitSeconds: +(submittedMs / 1_000).toFixed(1),
      acceptedPerSecond: +(ORDERS / (submittedMs / 1_000)).toFixed(1),
      settledPerSecond: +(ORDERS / ((lastSettled - firstCreated) / 1_000)).toFixed(1),
      delayedArrivals,
      postP50Ms: +percentile(postMs, 50).toFixed(1),
      postP99Ms: +percentile(postMs, 99).toFixed(1),
      postMaxMs: +percentile(postMs, 100).toFixed(1),
      completionP50Ms: percentile(completionMs, 50),
      completionP99Ms: percentile(completionMs, 99),
      completionMaxMs: percentile(completionMs, 100),
      // Orders placed before the outage began: the shop's completion time without the outage's tail.
      completionBeforeOutageP50Ms: percentile(orders.filter((o) => outage === undefined || o.createdAt < outage.from).map((o) => o.updatedAt - o.createdAt), 50),
      completionBeforeOutageP99Ms: percentile(orders.filter((o) => outage === undefined || o.createdAt < outage.from).map((o) => o.updatedAt - o.createdAt), 99),
      confirmed: confirmed.length,
      cancelled: { declined: declined.length, paymentUnavailable: unavailable.length, paymentUnavailableAwayFromOutage: unavailable.filter((o) => !inOutage(o)).length, outOfStock: outOfStock.length, other },
      confirmedAfterOutage,
      outageMs: outage === undefined ? 0 : outage.to - outage.from,
      retries,
      replays,
      concurrentDuplicates,
      settleWaitMs: report.settledAfterMs,
    };
    ctx.diagnostic(`soak figures: ${JSON.stringify(figures)}`);
    const kinds = new Map<string, number>();
    for (const o of cancelled) {
      const kind = reason(o).replace(/[0-9a-f-]{36}/g, '<id>').replace(/\d+/g, 'N').slice(0, 140);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    ctx.diagnostic(`cancellation reasons: ${JSON.stringify(Object.fromEntries(kinds))}`);
  });
});
