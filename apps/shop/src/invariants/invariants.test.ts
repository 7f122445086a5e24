/**
 * The invariant checker against a real monolith (SQLite files in a temp dir):
 * it passes after a clean run of confirmed, declined and out-of-stock orders,
 * and each invariant FAILS — naming the order, sku, charge or saga — when the
 * data is corrupted directly in the modules' SQLite files (each corruption is
 * undone after its test). Also: the internal read routes it uses refuse
 * callers without the internal key, and the CLI exits 0 / 1 / 2.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { formatReport, runInvariantCheck, type InvariantReport, type Violation } from './invariants.js';
import { settleOrder, startTestShop, type TestShop } from './harness.js';

let t: TestShop;
let token: string;
const placed: Record<'confirmed' | 'confirmed2' | 'declined' | 'outOfStock', { orderId: string; total: number }> = {} as never;

function db(module: 'orders' | 'payments' | 'inventory'): Database.Database {
  const d = new Database(join(t.dir, `${module}.db`));
  d.pragma('busy_timeout = 5000');
  return d;
}

/** Runs `sql` in the module's SQLite file, then `check`, then `undo` (always). */
async function corrupted(module: 'orders' | 'payments' | 'inventory', sql: string, undo: string, check: () => Promise<void>): Promise<void> {
  const d = db(module);
  try {
    d.exec(sql);
    await check();
  } finally {
    d.exec(undo);
    d.close();
  }
}

const check = (settleTimeoutMs = 5_000): Promise<InvariantReport> => runInvariantCheck(t.target, { settleTimeoutMs, pollIntervalMs: 50 });

const shown = new WeakSet<InvariantReport>();
function expectViolation(ctx: TestContext, report: InvariantReport, invariant: Violation['invariant'], subject: string, message: RegExp): void {
  const printed = formatReport(report);
  if (!shown.has(report)) ctx.diagnostic(printed);
  shown.add(report);
  const found = report.violations.find((v) => v.invariant === invariant && v.subject === subject && message.test(v.message));
  assert.ok(found, `expected a ${invariant} violation on ${subject} matching ${message}; got:\n${printed}`);
  assert.ok(printed.includes(`VIOLATION [${invariant}] ${subject}: ${found.message}`), 'the violation is printed');
}

before(async () => {
  t = await startTestShop();
  token = await t.login('demo', 'demo-password');
  const stock = async (sku: string, available: number) => assert.equal((await t.api('PUT', `/api/inventory/stock/${sku}`, { internal: true, body: { available } })).status, 200);
  await stock('KB-001', 20);
  await stock('MN-003', 1);
  const order = async (items: unknown, extra: Record<string, unknown> = {}) => {
    const r = await t.api('POST', '/api/orders', { token, key: randomUUID(), body: { items, ...extra } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return { orderId: r.body.orderId as string, total: r.body.total as number };
  };
  placed.confirmed = await order([{ sku: 'KB-001', qty: 2 }]);
  placed.confirmed2 = await order([{ sku: 'CB-005', qty: 3 }, { sku: 'MS-002', qty: 1 }]);
  placed.declined = await order([{ sku: 'HS-004', qty: 1 }], { paymentMethod: 'card_declined' });
  placed.outOfStock = await order([{ sku: 'MN-003', qty: 2 }]);
  const finals = await Promise.all(Object.values(placed).map((p) => settleOrder(t, p.orderId, token)));
  assert.deepEqual(finals.map((f) => f.status), ['CONFIRMED', 'CONFIRMED', 'CANCELLED', 'CANCELLED']);
});

after(async () => {
  await t?.close();
});

describe('the invariant checker (DESIGN.md §9) on a monolith', () => {
  it('serves its reads on internal routes only: 403 without the key, the data with it', async () => {
    for (const path of ['/api/orders/internal/orders', '/api/orders/internal/sagas', '/api/orders/internal/sagas/overdue', '/api/payments/internal/charges']) {
      const refused = await t.api('GET', path, { token });
      assert.equal(refused.status, 403, `${path}: ${JSON.stringify(refused.body)}`);
    }
    const orders = (await t.api('GET', '/api/orders/internal/orders?limit=2', { internal: true })).body as { orders: { orderId: string; status: string; items: unknown[]; terminalHistory: string[] }[]; next: string | null };
    assert.equal(orders.orders.length, 2);
    assert.equal(typeof orders.next, 'string', 'a full page has a cursor');
    const rest = (await t.api('GET', `/api/orders/internal/orders?after=${orders.next}`, { internal: true })).body as typeof orders;
    assert.equal(rest.orders.length, 2);
    assert.equal(rest.next, null);
    const all = [...orders.orders, ...rest.orders];
    const confirmed = all.find((o) => o.orderId === placed.confirmed.orderId);
    assert.deepEqual({ status: confirmed?.status, items: confirmed?.items, history: confirmed?.terminalHistory }, { status: 'CONFIRMED', items: [{ sku: 'KB-001', qty: 2 }], history: ['CONFIRMED'] });
    assert.deepEqual(all.find((o) => o.orderId === placed.declined.orderId)?.terminalHistory, ['CANCELLED']);

    const sagas = (await t.api('GET', '/api/orders/internal/sagas?states=completed', { internal: true })).body as { sagas: { id: string; state: string }[] };
    assert.deepEqual(sagas.sagas.map((s) => s.id).sort(), [placed.confirmed.orderId, placed.confirmed2.orderId].sort());
    assert.deepEqual((await t.api('GET', '/api/orders/internal/sagas/overdue', { internal: true })).body, { sagas: [] });

    const charges = (await t.api('GET', '/api/payments/internal/charges', { internal: true })).body as { charges: { orderId: string; amount: number; status: string; charged: number; refunded: number }[] };
    const charge = charges.charges.find((c) => c.orderId === placed.confirmed.orderId);
    assert.deepEqual(charge && { amount: charge.amount, status: charge.status, charged: charge.charged, refunded: charge.refunded }, { amount: placed.confirmed.total, status: 'charged', charged: placed.confirmed.total, refunded: 0 });
  });

  it('passes on a clean run: no violations, quiescent, nothing in flight or stuck', async (ctx) => {
    const report = await check(30_000);
    ctx.diagnostic(formatReport(report));
    assert.deepEqual(report.violations, []);
    assert.equal(report.quiescent, true);
    assert.deepEqual(report.inFlight, []);
    assert.deepEqual(report.stuck, []);
    assert.deepEqual(report.notes, []);
    assert.deepEqual(report.counts.byStatus, { CONFIRMED: 2, CANCELLED: 2 });
  });

  it('money: a ledger amount changed behind the shop is caught on the charge, the order and the totals', async (ctx) => {
    const chargeId = `${placed.confirmed.orderId}:chargePayment`;
    await corrupted('payments', `update payments_ledger set amount = amount + 100 where charge_id = '${chargeId}'`, `update payments_ledger set amount = amount - 100 where charge_id = '${chargeId}'`, async () => {
      const report = await check();
      expectViolation(ctx, report, 'money', `charge ${chargeId}`, /ledger holds charged \d+/);
      expectViolation(ctx, report, 'money', `order ${placed.confirmed.orderId}`, new RegExp(`is CONFIRMED \\(total ${placed.confirmed.total} EUR\\) but its charges net ${placed.confirmed.total + 100}`));
      expectViolation(ctx, report, 'money', 'ledger', /but confirmed orders total/);
    });
    assert.deepEqual(await check().then((r) => r.violations), []);
  });

  it('money: a charge for a cancelled order, and a charge of no order, are caught', async (ctx) => {
    const now = Date.now();
    await corrupted(
      'payments',
      `insert into payments_charges values ('stray-1', '${placed.declined.orderId}', 500, 'EUR', 'charged', ${now}, ${now});
       insert into payments_ledger (charge_id, kind, amount, at) values ('stray-1', 'charge', 500, ${now});
       insert into payments_charges values ('stray-2', 'no-such-order', 700, 'EUR', 'charged', ${now}, ${now});
       insert into payments_ledger (charge_id, kind, amount, at) values ('stray-2', 'charge', 700, ${now});`,
      `delete from payments_ledger where charge_id in ('stray-1', 'stray-2'); delete from payments_charges where id in ('stray-1', 'stray-2');`,
      async () => {
        const report = await check();
        expectViolation(ctx, report, 'money', `order ${placed.declined.orderId}`, /is CANCELLED .* but its charges net 500 \(expected 0\)/);
        expectViolation(ctx, report, 'money', 'charge stray-2', /belongs to no order \(no-such-order\)/);
      },
    );
  });

  it('no-double-charge: a second charge for an order is caught, naming both charges', async (ctx) => {
    const { orderId, total } = placed.confirmed2;
    const now = Date.now();
    await corrupted(
      'payments',
      `insert into payments_charges values ('dup-1', '${orderId}', ${total}, 'EUR', 'refunded', ${now}, ${now});
       insert into payments_ledger (charge_id, kind, amount, at) values ('dup-1', 'charge', ${total}, ${now}), ('dup-1', 'refund', ${total}, ${now});`,
      `delete from payments_ledger where charge_id = 'dup-1'; delete from payments_charges where id = 'dup-1';`,
      async () => {
        const report = await check();
        expectViolation(ctx, report, 'no-double-charge', `order ${orderId}`, new RegExp(`charged 2 times: .*${orderId}:chargePayment.*dup-1`));
        // Refunded in full, so the money still adds up: only the double charge is reported.
        assert.deepEqual(report.violations.map((v) => v.invariant), ['no-double-charge']);
      },
    );
  });

  it('stock: a count changed behind the shop breaks initial = available + reserved + sold', async (ctx) => {
    await corrupted('inventory', `update inventory_stock set available = available + 3 where sku = 'CB-005'`, `update inventory_stock set available = available - 3 where sku = 'CB-005'`, async () => {
      expectViolation(ctx, await check(), 'stock', 'sku CB-005', /initial \d+ ≠ available \d+ \+ reserved 0 \+ sold 3 = \d+/);
    });
  });

  it('stock: units sold that no confirmed order accounts for, units left reserved, and negative counts are caught', async (ctx) => {
    await corrupted(
      'inventory',
      `update inventory_stock set available = available - 1, sold = sold + 1 where sku = 'KB-001';
       update inventory_stock set available = available - 2, reserved = reserved + 2 where sku = 'MS-002';
       update inventory_stock set available = -1, initial = initial - available - 1 where sku = 'LE-006';`,
      `update inventory_stock set available = available + 1, sold = sold - 1 where sku = 'KB-001';
       update inventory_stock set available = available + 2, reserved = reserved - 2 where sku = 'MS-002';
       update inventory_stock set initial = initial + 2, available = 1 where sku = 'LE-006';`,
      async () => {
        const report = await check();
        expectViolation(ctx, report, 'stock', 'sku KB-001', /sold 3, but confirmed orders account for 2 unit/);
        expectViolation(ctx, report, 'stock', 'sku MS-002', /2 unit\(s\) reserved with no order in flight/);
        expectViolation(ctx, report, 'stock', 'sku LE-006', /negative available -1/);
      },
    );
    assert.deepEqual(await check().then((r) => r.violations), []);
  });

  it('single terminal state: a confirmed order whose saga log also records its cancellation is caught', async (ctx) => {
    const { orderId } = placed.confirmed;
    const now = Date.now();
    await corrupted(
      'orders',
      `insert into saga_steps values ('${orderId}', 9999, 'recordOrder', 'compensate', 'succeeded', 1, ${now}, ${now}, null)`,
      `delete from saga_steps where saga_id = '${orderId}' and seq = 9999`,
      async () => {
        expectViolation(ctx, await check(), 'single-terminal-state', `order ${orderId}`, /reached two terminal states: its saga log records CONFIRMED then CANCELLED/);
      },
    );
  });

  it('single terminal state: an order flipped from CONFIRMED to CANCELLED is caught (and its money no longer adds up)', async (ctx) => {
    const { orderId } = placed.confirmed2;
    await corrupted('orders', `update orders set status = 'CANCELLED' where id = '${orderId}'`, `update orders set status = 'CONFIRMED' where id = '${orderId}'`, async () => {
      const report = await check();
      expectViolation(ctx, report, 'single-terminal-state', `order ${orderId}`, /is CANCELLED but its saga log records CONFIRMED/);
      expectViolation(ctx, report, 'single-terminal-state', `order ${orderId}`, /its saga completed but the order is CANCELLED/);
      expectViolation(ctx, report, 'money', `order ${orderId}`, /is CANCELLED .* \(expected 0\)/);
    });
  });

  it('saga deadline: a saga running past its deadline is a violation; a stuck one and one within its deadline are reported, not violations', async (ctx) => {
    const now = Date.now();
    // Owned elsewhere with a long lease, so this shop's orchestrator leaves them alone.
    const row = (id: string, state: string, deadline: number) =>
      `('${id}', 'CreateOrder', 1, '${state}', 'forward', 2, '{}', '{}', null, 'elsewhere', 1, ${now + 3_600_000}, ${deadline}, 0, null, null, ${now - 120_000}, ${now})`;
    await corrupted(
      'orders',
      `insert into saga_instances values ${row('late-running', 'running', now - 60_000)}, ${row('late-stuck', 'stuck', now - 60_000)}, ${row('in-time', 'running', now + 600_000)}`,
      `delete from saga_instances where id in ('late-running', 'late-stuck', 'in-time')`,
      async () => {
        const report = await check(300);
        expectViolation(ctx, report, 'saga-deadline', 'saga late-running', /is running \(forward, at chargePayment\) \d+ ms past its deadline and not marked stuck/);
        assert.deepEqual(report.violations.map((v) => v.subject), ['saga late-running']);
        assert.deepEqual(report.stuck.map((s) => s.id), ['late-stuck']);
        assert.deepEqual(report.inFlight.map((s) => s.id), ['in-time']);
        assert.equal(report.quiescent, false);
        assert.match(report.notes.join('\n'), /money totals not compared: 2 saga\(s\) in flight/);
      },
    );
  });

  it('runs as a CLI: exit 0 when every invariant holds, 1 printing each violation, 2 when it cannot check', async () => {
    const cli = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', join(import.meta.dirname, 'cli.ts'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.on('error', reject);
        child.on('exit', (code) => resolve({ code, out, err }));
      });
    const ok = await cli(['--url', t.target.url, '--settle-ms', '1000'], { SHOP_INTERNAL_KEY: t.target.internalKey });
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /OK: every invariant holds/);
    await corrupted('inventory', `update inventory_stock set sold = sold + 5 where sku = 'HS-004'`, `update inventory_stock set sold = sold - 5 where sku = 'HS-004'`, async () => {
      const bad = await cli(['--url', t.target.url, '--internal-key', t.target.internalKey, '--settle-ms', '1000']);
      assert.equal(bad.code, 1, bad.out + bad.err);
      assert.match(bad.out, /VIOLATION \[stock\] sku HS-004: initial \d+ ≠ available/);
      assert.match(bad.out, /FAILED: \d+ violation/);
    });
    const wrongKey = await cli(['--url', t.target.url, '--internal-key', 'nope']);
    assert.equal(wrongKey.code, 2);
    assert.match(wrongKey.err, /could not check: .*403/);
    assert.equal((await cli(['--url', t.target.url], { SHOP_INTERNAL_KEY: '' })).code, 2);
  });
});
