import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { paymentsOutageCharts, paymentsOutageFigures, paymentsOutageTable, runPaymentsOutage } from './payments-outage.js';

describe('experiment payments-outage (a monolith shop, payments failing for a few seconds)', () => {
  it('orders whose charge fails are compensated with no charge kept, orders after the outage confirm, the checkout SLO burns, invariants hold', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'payments-outage-test-'));
    try {
      const r = await runPaymentsOutage({ baselineS: 3, outageS: 12, recoveryS: 8, rate: 8, users: 3, outDir, progress: 0 });
      const [baseline, outage, recovery] = r.phases;
      assert.ok(baseline !== undefined && outage !== undefined && recovery !== undefined);
      const why = `\n${paymentsOutageTable(r)}`;

      // Placement never depended on payments: every order was accepted and reached a final state.
      assert.equal(r.outcomes.unanswered, 0, why);
      assert.deepEqual(r.outcomes.refused, {}, why);
      assert.equal(r.outcomes.notTerminal, 0, why);
      assert.equal(r.outcomes.placed, baseline.placed + outage.placed + recovery.placed, why);

      // Before the outage every order confirms.
      assert.ok(baseline.placed > 0 && baseline.confirmed === baseline.placed, why);
      // During it, orders whose charge failed were compensated: cancelled at the charge step, nothing kept.
      assert.ok(outage.cancelled > 0, `no order placed during the outage was compensated${why}`);
      assert.ok((r.outcomes.failedSteps.chargePayment ?? 0) === r.outcomes.cancelled, why);
      for (const p of r.phases) assert.equal(p.cancelledWithChargeKept, 0, `${p.phase}: a cancelled order kept a charge${why}`);
      // After it, orders confirm again: every order placed in the second half of the recovery phase.
      const lateFrom = (recovery.startMs + recovery.durationMs / 2) / 1000;
      const late = r.ordersTimeline.filter((b) => b.tS >= lateFrom);
      assert.ok(
        late.length > 0 && late.every((b) => b.cancelled === 0),
        `orders placed late in recovery were cancelled${why}`,
      );
      assert.notEqual(r.ordersRecoveredAfterS, null, why);

      // The fault was on (through the admin API), the payments breaker opened, the checkout SLO burned budget.
      assert.ok((r.fault?.injected ?? 0) > 0, why);
      assert.ok((r.breaker?.transitions ?? 0) > 0, why);
      const checkout = r.slos.find((s) => s.name === 'checkout-completion');
      assert.ok(checkout !== undefined && (checkout.budgetSpent ?? 0) > 0, `checkout-completion spent no budget${why}`);

      // Invariants after the run.
      assert.equal(r.invariants.holds, true, r.invariants.violations.join('\n'));
      assert.equal(r.invariants.counts.orders, r.outcomes.placed, why);

      // Figures, table, charts and the written report.
      const figures = paymentsOutageFigures(r);
      assert.equal(figures.experiment, 'payments-outage');
      assert.equal(figures.outage_cancelled, outage.cancelled);
      assert.equal(figures.invariant_violations, 0);
      assert.ok(Object.keys(paymentsOutageCharts(r)).includes('payments-outage-orders.svg'));
      for (const f of ['report.json', 'report.md', 'summary.md', 'orders.svg', 'throughput.svg', 'breakers.svg']) assert.ok(existsSync(join(outDir, f)), f);
      assert.match(readFileSync(join(outDir, 'report.md'), 'utf8'), /!\[Orders by creation time and final state\]\(orders\.svg\)/);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});
