import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { VirtualClock } from '@bulwark/resilience/testing';
import { createSloEngine, type SloStatus } from './engine.js';
import type { SloAlert } from './alert.js';
import { sloRoutes } from './http.js';

describe('SLO HTTP API', () => {
  it('serves every status, one status, a problem+json 404 and the alerts', async () => {
    const clock = new VirtualClock(0);
    const engine = createSloEngine({
      clock,
      evaluateEveryMs: 0,
      slos: [
        { name: 'checkout', service: 'orders', objective: 0.999, labels: { team: 'shop' } },
        { name: 'search', service: 'catalog', objective: 0.99, window: '28d' },
      ],
    });
    const app = Fastify();
    await app.register(sloRoutes, { engine, prefix: '/admin' });
    try {
      engine.record('checkout', 980, 1_000); // 2% errors: 20x
      engine.evaluate();

      const all = await app.inject({ method: 'GET', url: '/admin/slos' });
      assert.equal(all.statusCode, 200);
      const { slos } = all.json<{ slos: SloStatus[] }>();
      assert.deepEqual(
        slos.map((s) => [s.name, s.window]),
        [
          ['checkout', '30d'],
          ['search', '28d'],
        ],
      );

      const one = await app.inject({ method: 'GET', url: '/admin/slos/checkout' });
      const status = one.json<SloStatus>();
      assert.equal(status.budget.badEvents, 20);
      assert.equal(Math.round(status.burnRates['5m']! * 1e6) / 1e6, 20);
      assert.equal(Math.round(status.budget.remainingFraction * 1e6) / 1e6, -19, 'overspent 19 budgets over');
      assert.deepEqual(status.labels, { team: 'shop' });
      assert.deepEqual(
        status.alerts.map((a) => a.severity),
        ['page', 'ticket'],
      );

      const missing = await app.inject({ method: 'GET', url: '/admin/slos/nope' });
      assert.equal(missing.statusCode, 404);
      assert.match(missing.headers['content-type'] as string, /^application\/problem\+json/);
      assert.equal(missing.json<{ code: string }>().code, 'BULWARK_SLO_NOT_FOUND');

      const alerts = await app.inject({ method: 'GET', url: '/admin/alerts' });
      const body = alerts.json<{ firing: SloAlert[]; history: SloAlert[] }>();
      assert.deepEqual(
        body.firing.map((a) => `${a.slo}/${a.severity}/${a.state}`),
        ['checkout/page/firing', 'checkout/ticket/firing'],
      );
      assert.equal(body.history.length, 2);
    } finally {
      await app.close();
      await engine.close();
    }
  });
});
