/**
 * The operator routes through `fastify.inject` on a kit service, with real
 * tokens from a real JWKS issuer on loopback, over a real saga store on
 * SQLite and PostgreSQL driven by a real orchestrator.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createService, problemTypeUri } from '@bulwark/http';
import { bearerAuth, JwtVerifier } from '@bulwark/http/auth';
import { TestIssuer } from '@bulwark/http/testing';
import { openStore, type Store } from '@bulwark/store';
import { testDatabase } from '@bulwark/store/testing';
import { SagaAdmin, type SagaDetail, type SagaSummary } from '../admin.js';
import { defineSaga, type SagaDefinition, type StepContext } from '../definition.js';
import { sagaErrorCodes, type SagaErrorCode } from '../errors.js';
import { createSagaOrchestrator, type SagaOrchestrator } from '../orchestrator.js';
import { sagaMigrations } from '../schema.js';
import { sagaAdminRoutes } from './routes.js';
import { sagaProblemTypes } from './problems.js';

type Mode = 'ok' | 'stuck-forward' | 'stuck-compensating' | 'hang';
const AUDIENCE = 'ops-console';
const fast = { maxAttempts: 2, backoff: { baseMs: 1, capMs: 2 }, retryOn: () => true };

const hang = (ctx: StepContext): Promise<never> =>
  new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));

/** reserve (compensatable) -> charge (pivot) -> ship (retriable); each mode makes one of them misbehave. */
const opsSaga: SagaDefinition = defineSaga('Ops', {
  input: (raw) => raw as { mode: Mode },
  deadlineMs: 3_600_000,
})
  .step('reserve', {
    invoke: async (data, ctx) => {
      if (data.mode === 'hang') await hang(ctx);
      return { reserved: true };
    },
    compensate: async (data) => {
      if (data.mode === 'stuck-compensating') throw new Error('inventory is down');
    },
    compensationRetry: fast,
  })
  .step('charge', {
    pivot: true,
    invoke: async (data) => {
      if (data.mode === 'stuck-compensating') throw Object.assign(new Error('card declined'), { retryable: false });
    },
    retry: fast,
  })
  .step('ship', {
    invoke: async (data) => {
      if (data.mode === 'stuck-forward') throw new Error('carrier API down');
    },
    retry: fast,
  })
  .build();

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`saga admin routes on ${engine}`, () => {
    let issuer: TestIssuer;
    let store: Store<unknown>;
    let orchestrator: SagaOrchestrator;
    let app: FastifyInstance;
    let cleanup: () => Promise<void>;
    const ids = {} as Record<'ok' | 'stuckForward' | 'stuckCompensating' | 'hang1' | 'hang2' | 'other', string>;
    let operator: string;
    let reader: string;
    let noScopes: string;

    before(async () => {
      issuer = await TestIssuer.start();
      const db = await testDatabase(engine, 'sagahttp');
      cleanup = db.cleanup;
      store = await openStore<unknown>({ module: db.module, url: db.url, migrations: { saga: sagaMigrations } });
      const other: SagaDefinition = defineSaga('Other', { input: (raw) => raw as Record<string, unknown> })
        .step('only', { pivot: true, invoke: async () => undefined })
        .build();
      const sagas = [opsSaga, other];
      orchestrator = await createSagaOrchestrator({ store, sagas, pollIntervalMs: 50, leaseMs: 1_500, maintenanceIntervalMs: 100 });

      ids.ok = (await orchestrator.start(opsSaga, { mode: 'ok' })).id;
      ids.stuckForward = (await orchestrator.start(opsSaga, { mode: 'stuck-forward' })).id;
      ids.stuckCompensating = (await orchestrator.start(opsSaga, { mode: 'stuck-compensating' })).id;
      ids.hang1 = (await orchestrator.start(opsSaga, { mode: 'hang' })).id;
      ids.hang2 = (await orchestrator.start(opsSaga, { mode: 'hang' })).id;
      ids.other = (await orchestrator.start(other, {})).id;
      for (const id of [ids.ok, ids.stuckForward, ids.stuckCompensating, ids.other]) await orchestrator.result(id, { timeoutMs: 20_000 });

      const verifier = new JwtVerifier({ issuers: [{ issuer: issuer.issuer, audience: AUDIENCE, jwksUri: issuer.jwksUri }] });
      app = await createService({ kit: { openapi: { info: { title: 'orders', version: '1.0.0' } }, shutdown: { signals: [] }, accessLog: false } });
      await app.register(bearerAuth, { verifier, defaultAuth: 'optional' });
      await app.register(sagaAdminRoutes, { admin: new SagaAdmin({ store, sagas }) });
      // A second mount, two hours in the future, under its own prefix: every open saga is overdue there.
      await app.register(sagaAdminRoutes, { admin: new SagaAdmin({ store, sagas, now: () => Date.now() + 7_200_000 }), prefix: '/later' });
      await app.ready();

      operator = await issuer.sign({ sub: 'alice@example.com', aud: AUDIENCE, scope: 'saga:read saga:operate' });
      reader = await issuer.sign({ sub: 'bob@example.com', aud: AUDIENCE, scope: 'saga:read' });
      noScopes = await issuer.sign({ sub: 'eve@example.com', aud: AUDIENCE });
    });

    after(async () => {
      await app?.close();
      await orchestrator?.close({ drainMs: 0 });
      await store?.close();
      await cleanup?.();
      await issuer?.close();
    });

    /** `null`: no Authorization header. */
    const get = (url: string, token: string | null = reader) => app.inject({ method: 'GET', url, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    const post = (url: string, body: unknown, token: string | null = operator) =>
      app.inject({ method: 'POST', url, payload: body as Record<string, unknown>, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    const listed = (res: LightMyRequestResponse): string[] => res.json<{ sagas: SagaSummary[] }>().sagas.map((s) => s.id);

    function assertProblem(res: LightMyRequestResponse, status: number, slug: string): Record<string, unknown> {
      assert.equal(res.statusCode, status, res.body);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json<Record<string, unknown>>();
      assert.equal(body.type, problemTypeUri(slug));
      assert.equal(body.status, status);
      return body;
    }

    it('lists sagas newest first and filters them by state (repeated or comma list), type and age', async () => {
      const all = await get('/admin/sagas');
      assert.equal(all.statusCode, 200, all.body);
      assert.deepEqual(listed(all), [ids.other, ids.hang2, ids.hang1, ids.stuckCompensating, ids.stuckForward, ids.ok]);
      assert.equal(all.json<{ nextAfter: unknown }>().nextAfter, null);

      assert.deepEqual(listed(await get('/admin/sagas?state=stuck')).sort(), [ids.stuckForward, ids.stuckCompensating].sort());
      assert.deepEqual(listed(await get('/admin/sagas?state=stuck,completed')).sort(), [ids.ok, ids.stuckForward, ids.stuckCompensating, ids.other].sort());
      assert.deepEqual(listed(await get('/admin/sagas?state=stuck&state=completed&type=Ops')).sort(), [ids.ok, ids.stuckForward, ids.stuckCompensating].sort());
      assert.deepEqual(listed(await get('/admin/sagas?type=Other')), [ids.other]);
      assert.deepEqual(listed(await get('/admin/sagas?olderThanMs=3600000')), []);
      assert.equal(listed(await get('/admin/sagas?newerThanMs=3600000')).length, 6);

      const stuck = (await get('/admin/sagas?state=stuck')).json<{ sagas: SagaSummary[] }>();
      const forward = stuck.sagas.find((s) => s.id === ids.stuckForward);
      assert.equal(forward?.failedStep, 'ship');
      assert.equal(forward?.phase, 'forward');
    });

    it('pages with limit and the nextAfter cursor', async () => {
      const first = (await get('/admin/sagas?limit=4')).json<{ sagas: SagaSummary[]; nextAfter: string | null }>();
      assert.equal(first.sagas.length, 4);
      assert.equal(first.nextAfter, ids.stuckCompensating);
      const second = (await get(`/admin/sagas?limit=4&after=${first.nextAfter}`)).json<{ sagas: SagaSummary[]; nextAfter: string | null }>();
      assert.deepEqual(second.sagas.map((s) => s.id), [ids.stuckForward, ids.ok]);
      assert.equal(second.nextAfter, null);
    });

    it('refuses a bad filter with the kit validation problem naming the parameter', async () => {
      const badState = assertProblem(await get('/admin/sagas?state=stuck,exploded'), 400, 'validation');
      assert.equal((badState['invalid-params'] as { in: string; name: string }[])[0]?.in, 'querystring');
      assertProblem(await get('/admin/sagas?limit=0'), 400, 'validation');
      assertProblem(await get('/admin/sagas?olderThanMs=-5'), 400, 'validation');
    });

    it('shows one saga with its step log and a timeline in time order', async () => {
      const res = await get(`/admin/sagas/${ids.stuckForward}`);
      assert.equal(res.statusCode, 200, res.body);
      const detail = res.json<SagaDetail>();
      assert.equal(detail.state, 'stuck');
      assert.deepEqual(detail.input, { mode: 'stuck-forward' });
      assert.deepEqual(detail.outputs, { reserve: { reserved: true } });
      assert.deepEqual(
        detail.steps.map((s) => `${s.step}:${s.phase}:${s.outcome}`),
        ['reserve:invoke:succeeded', 'charge:invoke:succeeded', 'ship:invoke:failed'],
      );
      assert.deepEqual(detail.timeline.map((t) => t.kind), ['created', 'step', 'step', 'step']);
      const failed = detail.timeline[3] as { attempts: number; error: string; durationMs: number };
      assert.equal(failed.attempts, 2);
      assert.match(failed.error, /carrier API down/);
      assert.equal(typeof failed.durationMs, 'number');
      const times = detail.timeline.map((t) => t.at);
      assert.deepEqual(times, [...times].sort((a, b) => a - b));
    });

    it('answers 404 saga-not-found for an unknown id', async () => {
      const body = assertProblem(await get('/admin/sagas/no-such-saga'), 404, 'saga-not-found');
      assert.equal(body.code, 'BULWARK_SAGA_NOT_FOUND');
      assert.equal(body.sagaId, 'no-such-saga');
      assert.equal(typeof body.requestId, 'string');
      assertProblem(await post('/admin/sagas/no-such-saga/resolve', { reason: 'cleanup' }), 404, 'saga-not-found');
    });

    it('answers 401 without a token and with a bad one, and 403 without the scope', async () => {
      assertProblem(await get('/admin/sagas', null), 401, 'unauthenticated');
      assertProblem(await get('/admin/sagas', 'not-a-jwt'), 401, 'invalid-token');
      assertProblem(await get('/admin/sagas', noScopes), 403, 'insufficient-scope');
      assertProblem(await post(`/admin/sagas/${ids.stuckForward}/retry`, { reason: 'x' }, null), 401, 'unauthenticated');
      assertProblem(await post(`/admin/sagas/${ids.stuckForward}/retry`, { reason: 'x' }, reader), 403, 'insufficient-scope');
      assertProblem(await post(`/admin/sagas/${ids.stuckCompensating}/resolve`, { reason: 'x' }, reader), 403, 'insufficient-scope');
      // Nothing happened to them.
      const still = (await get('/admin/sagas?state=stuck')).json<{ sagas: SagaSummary[] }>();
      assert.equal(still.sagas.length, 2);
    });

    it('lists overdue sagas (the mount whose clock is two hours ahead sees the running ones)', async () => {
      assert.deepEqual(listed(await get('/admin/sagas/overdue')), []);
      const later = await get('/later/sagas/overdue');
      assert.equal(later.statusCode, 200, later.body);
      assert.deepEqual(listed(later).sort(), [ids.hang1, ids.hang2].sort());
      assert.ok((later.json<{ sagas: SagaSummary[] }>()).sagas.every((s) => s.overdue));
    });

    it('retries a stuck saga and audits it with the token subject as actor', async () => {
      const res = await post(`/admin/sagas/${ids.stuckForward}/retry`, { reason: 'carrier back after INC-231' });
      assert.equal(res.statusCode, 200, res.body);
      const summary = res.json<SagaSummary>();
      assert.equal(summary.state, 'running');
      assert.equal(summary.step, 'ship');
      const detail = (await get(`/admin/sagas/${ids.stuckForward}`)).json<SagaDetail>();
      assert.deepEqual(
        detail.audit.map((a) => ({ action: a.action, actor: a.actor, reason: a.reason, beforeState: a.beforeState, afterState: a.afterState })),
        [{ action: 'retry-step', actor: 'alice@example.com', reason: 'carrier back after INC-231', beforeState: 'stuck', afterState: 'running' }],
      );
      assert.ok(detail.timeline.some((t) => t.kind === 'operator' && t.actor === 'alice@example.com'));
    });

    it('marks a stuck saga resolved, audited', async () => {
      const res = await post(`/admin/sagas/${ids.stuckCompensating}/resolve`, { reason: 'refunded by hand, ticket OPS-7' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((res.json<SagaSummary>()).state, 'resolved');
      const detail = (await get(`/admin/sagas/${ids.stuckCompensating}`)).json<SagaDetail>();
      assert.equal(detail.audit.length, 1);
      assert.equal(detail.audit[0]?.action, 'mark-resolved');
      assert.equal(detail.audit[0]?.actor, 'alice@example.com');
      assert.equal(detail.audit[0]?.reason, 'refunded by hand, ticket OPS-7');
    });

    it('forces a running saga to compensate, audited; the orchestrator then undoes it', async () => {
      const res = await post(`/admin/sagas/${ids.hang1}/force-compensate`, { reason: 'customer cancelled on the phone' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((res.json<SagaSummary>()).state, 'compensating');
      const outcome = await orchestrator.result(ids.hang1, { timeoutMs: 20_000 });
      assert.equal(outcome.state, 'compensated');
      const detail = (await get(`/admin/sagas/${ids.hang1}`)).json<SagaDetail>();
      assert.deepEqual(detail.audit.map((a) => [a.action, a.actor, a.beforeState, a.afterState]), [['force-compensate', 'alice@example.com', 'running', 'compensating']]);
    });

    it('answers 409 saga-state-conflict for an action the state does not allow, changing nothing', async () => {
      const body = assertProblem(await post(`/admin/sagas/${ids.ok}/resolve`, { reason: 'why not' }), 409, 'saga-state-conflict');
      assert.equal(body.code, 'BULWARK_SAGA_STATE');
      assert.equal(body.state, 'completed');
      assert.equal(body.sagaId, ids.ok);
      assertProblem(await post(`/admin/sagas/${ids.ok}/retry`, { reason: 'why not' }), 409, 'saga-state-conflict');
      assertProblem(await post(`/admin/sagas/${ids.ok}/force-compensate`, { reason: 'why not' }), 409, 'saga-state-conflict');
      const detail = (await get(`/admin/sagas/${ids.ok}`)).json<SagaDetail>();
      assert.equal(detail.state, 'completed');
      assert.deepEqual(detail.audit, []);
    });

    it('answers 400: the kit validation problem for a missing reason, saga-action-invalid for a blank one', async () => {
      assertProblem(await post(`/admin/sagas/${ids.hang2}/force-compensate`, {}), 400, 'validation');
      assertProblem(await post(`/admin/sagas/${ids.hang2}/force-compensate`, { reason: { text: 'x' } }), 400, 'validation');
      const body = assertProblem(await post(`/admin/sagas/${ids.hang2}/force-compensate`, { reason: '   ' }), 400, 'saga-action-invalid');
      assert.equal(body.code, 'BULWARK_SAGA_ACTION_INVALID');
      assert.equal(body.field, 'reason');
      assert.deepEqual((body['invalid-params'] as { in: string; name: string }[]).map((p) => [p.in, p.name]), [['body', 'reason']]);
      assert.equal(((await get(`/admin/sagas/${ids.hang2}`)).json<SagaDetail>()).state, 'running');
    });

    it('never lets the body name the actor: the audit records the token subject', async () => {
      const res = await post(`/admin/sagas/${ids.hang2}/force-compensate`, { reason: 'duplicate order', actor: 'mallory' });
      assert.equal(res.statusCode, 200, res.body);
      const detail = (await get(`/admin/sagas/${ids.hang2}`)).json<SagaDetail>();
      assert.deepEqual(detail.audit.map((a) => a.actor), ['alice@example.com']);
    });

    it('publishes every route in the OpenAPI document', async () => {
      const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, unknown> }>> }>();
      for (const path of ['/admin/sagas', '/admin/sagas/overdue', '/admin/sagas/{id}', '/admin/sagas/{id}/retry', '/admin/sagas/{id}/force-compensate', '/admin/sagas/{id}/resolve']) {
        assert.ok(doc.paths[path] !== undefined, `${path} is in the document`);
      }
      const list = doc.paths['/admin/sagas']?.get;
      assert.deepEqual(list?.parameters?.map((p) => p.name).sort(), ['after', 'limit', 'newerThanMs', 'olderThanMs', 'state', 'type']);
      assert.ok(doc.paths['/admin/sagas/{id}/retry']?.post?.responses['409'] !== undefined);
    });
  });
}

describe('saga problem types', () => {
  it('has one stable, distinct type URI per saga error code, with its status', () => {
    const codes = Object.keys(sagaErrorCodes) as SagaErrorCode[];
    assert.deepEqual(Object.keys(sagaProblemTypes).sort(), [...codes].sort());
    const uris = codes.map((c) => sagaProblemTypes[c].type);
    assert.equal(new Set(uris).size, codes.length);
    for (const code of codes) {
      assert.equal(sagaProblemTypes[code].status, sagaErrorCodes[code].status);
      assert.match(sagaProblemTypes[code].type, /^https:\/\/bulwark\.dev\/problems\/saga-[a-z-]+$/);
    }
  });

  it('keeps the routes closed when no bearerAuth runs, and registers its own with `verifier`', async () => {
    const issuer = await TestIssuer.start();
    const db = await testDatabase('sqlite', 'sagahttp');
    const store = await openStore<unknown>({ module: db.module, url: db.url, migrations: { saga: sagaMigrations } });
    const admin = new SagaAdmin({ store, sagas: [opsSaga] });
    try {
      const bare = await createService({ kit: { openapi: false, shutdown: { signals: [] }, accessLog: false } });
      await bare.register(sagaAdminRoutes, { admin });
      const token = await issuer.sign({ sub: 'alice', aud: AUDIENCE, scope: 'saga:read' });
      const refused = await bare.inject({ method: 'GET', url: '/admin/sagas', headers: { authorization: `Bearer ${token}` } });
      assert.equal(refused.statusCode, 401, refused.body);
      await bare.close();

      const verifier = new JwtVerifier({ issuers: [{ issuer: issuer.issuer, audience: AUDIENCE, jwksUri: issuer.jwksUri }] });
      const own = await createService({ kit: { openapi: false, shutdown: { signals: [] }, accessLog: false } });
      await own.register(sagaAdminRoutes, { admin, verifier, prefix: '/ops' });
      own.get('/public', () => ({ ok: true }));
      const ok = await own.inject({ method: 'GET', url: '/ops/sagas', headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal((await own.inject({ method: 'GET', url: '/ops/sagas' })).statusCode, 401);
      // Its bearerAuth stays with its routes.
      assert.equal((await own.inject({ method: 'GET', url: '/public' })).statusCode, 200);
      await own.close();
    } finally {
      await store.close();
      await db.cleanup();
      await issuer.close();
    }
  });
});
