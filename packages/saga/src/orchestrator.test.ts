import { strict as assert } from 'node:assert';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore, sql } from '@bulwark/store';
import { testDatabase } from '@bulwark/store/testing';
import { defineSaga, type SagaBuilder, type SagaDefinition } from './definition.js';
import { InvalidSagaInputError, SagaLockedError, SagaRefusedError, SagaStateError, isSagaError } from './errors.js';
import { SagaAdmin } from './admin.js';
import { SagaOrchestrator, type SagaOrchestratorOptions } from './orchestrator.js';
import { sagaMigrations } from './schema.js';
import { Ledger, ledgerMigrations } from './testing/ledger.js';
import type { SagaEvents } from './events.js';

/** How a step misbehaves: per step name, consumed as calls arrive. */
type Fault = 'refuse' | 'transient' | 'hang' | 'compensation-fails';

interface Flow {
  faults: Map<string, Fault[]>;
  /** Steps whose compensation fails until cleared. */
  brokenCompensations: Set<string>;
  calls: string[];
}

const TRANSIENT = Object.assign(new Error('503 from participant'), { status: 503 });

/** A saga of `names.length` steps on `ledger`; the last step is the pivot when `pivot` is given. */
function ledgerSaga(ledger: Ledger, flow: Flow, names: string[], options: { name?: string; version?: number; pivotAt?: number; lock?: boolean; deadlineMs?: number; onLocked?: 'refuse' | 'queue'; attemptTimeoutMs?: number } = {}): SagaDefinition<{ orderId: string; amount: number }, unknown> {
  let builder: SagaBuilder<{ orderId: string; amount: number }, Record<string, unknown>> = defineSaga(options.name ?? 'Flow', {
    version: options.version ?? 1,
    input: (raw) => {
      const r = raw as { orderId?: unknown; amount?: unknown };
      if (typeof r?.orderId !== 'string' || typeof r.amount !== 'number') throw new Error('orderId (string) and amount (number) are required');
      return { orderId: r.orderId, amount: r.amount };
    },
    ...(options.lock === true ? { lockKey: (i: { orderId: string }) => `order:${i.orderId}` } : {}),
    ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
    ...(options.onLocked === undefined ? {} : { onLocked: options.onLocked }),
  });
  for (const [i, name] of names.entries()) {
    const pivot = options.pivotAt === i;
    const after = options.pivotAt !== undefined && i > options.pivotAt;
    builder = builder.step(name, {
      invoke: async (_data, ctx) => {
        flow.calls.push(`${name}:${ctx.attempt}`);
        const fault = flow.faults.get(name)?.shift();
        if (fault === 'refuse') throw Object.assign(new Error(`${name} refused`), { retryable: false });
        if (fault === 'transient') throw TRANSIENT;
        if (fault === 'hang') await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));
        await ledger.apply(ctx.idempotencyKey);
        return { [`${name}Done`]: true };
      },
      ...(pivot || after
        ? {}
        : {
            compensate: async (_data, ctx) => {
              flow.calls.push(`${name}:compensate`);
              if (flow.brokenCompensations.has(name)) throw new Error(`${name} compensation is broken`);
              await ledger.undo(ctx.invokeKey, ctx.idempotencyKey);
            },
          }),
      ...(pivot ? { pivot: true } : {}),
      retry: { maxAttempts: after ? 3 : 3, backoff: { baseMs: 1, capMs: 5 } },
      compensationRetry: { maxAttempts: 3, backoff: { baseMs: 1, capMs: 5 }, retryOn: () => true },
      ...(options.attemptTimeoutMs === undefined ? {} : { attemptTimeoutMs: options.attemptTimeoutMs }),
    });
  }
  return builder.build();
}

function newFlow(): Flow {
  return { faults: new Map(), brokenCompensations: new Set(), calls: [] };
}

function recordEvents(orchestrator: SagaOrchestrator): { [K in keyof SagaEvents]?: SagaEvents[K][] } {
  const seen: { [K in keyof SagaEvents]?: SagaEvents[K][] } = {};
  for (const name of ['started', 'step-succeeded', 'step-failed', 'failed', 'compensated', 'completed', 'stuck', 'lease-lost', 'lease-taken', 'overdue', 'refused'] as const) {
    orchestrator.on(name, (e) => void ((seen[name] ??= []) as unknown[]).push(e));
  }
  return seen;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`saga orchestrator on ${engine}`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    });

    /** Closes each test's stores when it ends (a suite's worth of pools would exhaust PostgreSQL's connections). */
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    });

    async function setup(defs: (ledger: Ledger, flow: Flow) => SagaDefinition[], extra: Partial<SagaOrchestratorOptions> = {}) {
      const sagaDb = await testDatabase(engine, 'saga');
      const ledgerDb = await testDatabase(engine, 'ledger');
      const store = await openStore<unknown>({ module: sagaDb.module, url: sagaDb.url, migrations: { saga: sagaMigrations }, poolSize: 4 });
      const ledgerStore = await openStore<unknown>({ module: ledgerDb.module, url: ledgerDb.url, migrations: ledgerMigrations, poolSize: 4 });
      cleanups.push(sagaDb.cleanup, ledgerDb.cleanup, () => store.close(), () => ledgerStore.close());
      const ledger = new Ledger(ledgerStore);
      const flow = newFlow();
      const sagas = defs(ledger, flow);
      /** An orchestrator; `before` sees it before it starts claiming (to catch its first events). */
      const open = async (more: Partial<SagaOrchestratorOptions> = {}, before?: (o: SagaOrchestrator) => void) => {
        const o = new SagaOrchestrator({ store, sagas, pollIntervalMs: 50, leaseMs: 2_000, maintenanceIntervalMs: 100, ...extra, ...more });
        before?.(o);
        cleanups.push(() => o.close({ drainMs: 0 }));
        return o.open();
      };
      const orchestrator = await open();
      const admin = new SagaAdmin({ store, sagas });
      return { store, ledger, flow, sagas, orchestrator, admin, open };
    }

    const keysOf = async (ledger: Ledger, kind: string) => (await ledger.effects()).filter((e) => e.kind === kind).map((e) => e.key).sort();

    it('runs every step once, passes each step the data before it, and logs the timeline', async () => {
      const seenData: unknown[] = [];
      const { ledger, orchestrator, admin, sagas } = await setup((ledger) => [
        defineSaga('Typed', { input: (raw) => raw as { orderId: string; amount: number } })
          .step('reserve', {
            invoke: async (data, ctx) => {
              seenData.push(data);
              await ledger.apply(ctx.idempotencyKey);
              return { reservationId: `r-${data.orderId}` };
            },
            compensate: async (_d, ctx) => void (await ledger.undo(ctx.invokeKey, ctx.idempotencyKey)),
          })
          .step('charge', {
            invoke: async (data, ctx) => {
              seenData.push(data);
              await ledger.apply(ctx.idempotencyKey);
              return { chargeId: `c-${data.reservationId}` };
            },
            compensate: async (_d, ctx) => void (await ledger.undo(ctx.invokeKey, ctx.idempotencyKey)),
          })
          .step('confirm', {
            pivot: true,
            invoke: async (data, ctx) => {
              seenData.push(data);
              await ledger.apply(ctx.idempotencyKey);
            },
          })
          .build(),
      ]);
      const events = recordEvents(orchestrator);
      const handle = await orchestrator.start(sagas[0] as SagaDefinition, { orderId: 'o1', amount: 10 });
      assert.equal(handle.state, 'running');
      const outcome = await orchestrator.result(handle.id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'completed');
      assert.deepEqual(outcome.data, { orderId: 'o1', amount: 10, reservationId: 'r-o1', chargeId: 'c-r-o1' });
      assert.deepEqual(seenData, [
        { orderId: 'o1', amount: 10 },
        { orderId: 'o1', amount: 10, reservationId: 'r-o1' },
        { orderId: 'o1', amount: 10, reservationId: 'r-o1', chargeId: 'c-r-o1' },
      ]);
      assert.deepEqual(await keysOf(ledger, 'do'), [`${handle.id}:charge`, `${handle.id}:confirm`, `${handle.id}:reserve`]);
      const detail = await admin.get(handle.id);
      assert.equal(detail.state, 'completed');
      assert.deepEqual(detail.steps.map((s) => `${s.step}:${s.phase}:${s.outcome}:${s.attempts}`), ['reserve:invoke:succeeded:1', 'charge:invoke:succeeded:1', 'confirm:invoke:succeeded:1']);
      assert.deepEqual(detail.timeline.map((t) => t.kind), ['created', 'step', 'step', 'step']);
      assert.equal(events.completed?.length, 1);
      assert.equal(events['step-succeeded']?.length, 3);
    });

    it('compensates the completed steps in reverse order when a step is refused, at every step', async () => {
      const names = ['a', 'b', 'c', 'd'];
      const { ledger, flow, orchestrator, sagas } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, names)]);
      const events = recordEvents(orchestrator);
      for (const [failAt, failing] of names.entries()) {
        flow.faults.set(failing, ['refuse']);
        flow.calls.length = 0;
        const { id } = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: `o-${failing}`, amount: 1 });
        const outcome = await orchestrator.result(id, { timeoutMs: 10_000 });
        assert.equal(outcome.state, 'compensated', `failing at ${failing}`);
        assert.equal(outcome.failedStep, failing);
        const completed = names.slice(0, failAt);
        // A refusal is final and certain: the refused step itself is not compensated.
        assert.deepEqual(flow.calls.filter((c) => c.endsWith(':compensate')), completed.reverse().map((n) => `${n}:compensate`));
        const effects = (await ledger.effects()).filter((e) => e.key.startsWith(id));
        assert.deepEqual(effects.filter((e) => e.kind === 'undo').map((e) => e.undoes).sort(), names.slice(0, failAt).map((n) => `${id}:${n}`).sort());
        assert.ok(effects.filter((e) => e.kind === 'undo').every((e) => e.key === `${e.undoes}:compensate`));
      }
      assert.equal(events.compensated?.length, 4);
      assert.equal(events.failed?.length, 4);
    });

    it('retries a transient failure with the same idempotency key and records the attempts', async () => {
      const { ledger, flow, orchestrator, sagas, admin } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a', 'b'])]);
      flow.faults.set('b', ['transient', 'transient']);
      const { id } = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: 'o', amount: 1 });
      assert.equal((await orchestrator.result(id, { timeoutMs: 10_000 })).state, 'completed');
      assert.deepEqual(flow.calls, ['a:1', 'b:1', 'b:2', 'b:3']);
      assert.deepEqual(await keysOf(ledger, 'do'), [`${id}:a`, `${id}:b`]);
      assert.deepEqual((await admin.get(id)).steps.map((s) => s.attempts), [1, 3]);
    });

    it('compensates a step whose outcome is unknown (timed out) as well, and a late apply of it is refused', async () => {
      const { ledger, flow, orchestrator, sagas } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a', 'b', 'c'], { attemptTimeoutMs: 50 })]);
      flow.faults.set('b', ['hang', 'hang', 'hang']);
      const { id } = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: 'o', amount: 1 });
      const outcome = await orchestrator.result(id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'compensated');
      assert.deepEqual(flow.calls.filter((c) => c.endsWith(':compensate')), ['b:compensate', 'a:compensate']);
      // b never applied: its compensation left a tombstone, so the call that was in flight cannot land later.
      await assert.rejects(ledger.apply(`${id}:b`), /compensated before it arrived/);
      assert.deepEqual(await keysOf(ledger, 'undo'), [`${id}:a:compensate`]);
    });

    it('goes stuck when a compensation keeps failing, alerts, and an operator retry finishes it (audited)', async () => {
      const { ledger, flow, orchestrator, sagas, admin } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a', 'b', 'c'])]);
      const events = recordEvents(orchestrator);
      flow.faults.set('c', ['refuse']);
      flow.brokenCompensations.add('a');
      const { id } = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: 'o', amount: 1 });
      const outcome = await orchestrator.result(id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'stuck');
      assert.equal(events.stuck?.[0]?.step, 'a');
      assert.equal(events.stuck?.[0]?.phase, 'compensate');
      assert.deepEqual((await admin.list({ states: ['stuck'] })).map((s) => s.id), [id]);
      await assert.rejects(admin.retryStep(id, { actor: '', reason: 'x' }), (e: unknown) => isSagaError(e) && e.code === 'BULWARK_SAGA_ACTION_INVALID');
      await assert.rejects(admin.markResolved('nope', { actor: 'ops', reason: 'x' }), (e: unknown) => isSagaError(e) && e.code === 'BULWARK_SAGA_NOT_FOUND');
      flow.brokenCompensations.clear();
      await admin.retryStep(id, { actor: 'alice', reason: 'compensation endpoint fixed' });
      assert.equal((await orchestrator.result(id, { timeoutMs: 10_000 })).state, 'compensated');
      assert.deepEqual((await keysOf(ledger, 'undo')).sort(), [`${id}:a:compensate`, `${id}:b:compensate`]);
      const detail = await admin.get(id);
      assert.deepEqual(detail.audit.map((a) => [a.action, a.actor, a.reason, a.beforeState, a.afterState]), [['retry-step', 'alice', 'compensation endpoint fixed', 'stuck', 'compensating']]);
      assert.ok(detail.timeline.some((t) => t.kind === 'operator'));
      await assert.rejects(admin.markResolved(id, { actor: 'alice', reason: 'done' }), SagaStateError);
    });

    it('after the pivot a failing step never compensates: stuck, then retried or marked resolved by an operator', async () => {
      const { ledger, flow, orchestrator, sagas, admin } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a', 'pivot', 'notify'], { pivotAt: 1 })]);
      flow.faults.set('notify', ['refuse', 'refuse']);
      const first = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: 'o1', amount: 1 });
      const second = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: 'o2', amount: 1 });
      for (const { id } of [first, second]) assert.equal((await orchestrator.result(id, { timeoutMs: 10_000 })).state, 'stuck');
      assert.equal(flow.calls.filter((c) => c.endsWith(':compensate')).length, 0);
      await assert.rejects(admin.forceCompensate(first.id, { actor: 'ops', reason: 'undo it' }), /past its pivot/);
      await admin.retryStep(first.id, { actor: 'ops', reason: 'mail server back' });
      assert.equal((await orchestrator.result(first.id, { timeoutMs: 10_000 })).state, 'completed');
      await admin.markResolved(second.id, { actor: 'ops', reason: 'customer notified by phone' });
      assert.equal((await admin.get(second.id)).state, 'resolved');
      assert.ok((await keysOf(ledger, 'do')).includes(`${first.id}:notify`));
    });

    it('an operator can force a running saga to compensate; the owner that was driving it is fenced off', async () => {
      const { ledger, flow, orchestrator, sagas, admin } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a', 'b', 'c'])]);
      const events = recordEvents(orchestrator);
      flow.faults.set('b', ['hang']);
      const { id } = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: 'o', amount: 1 });
      while (!flow.calls.includes('b:1')) await sleep(5);
      await admin.forceCompensate(id, { actor: 'ops', reason: 'customer cancelled' });
      const outcome = await orchestrator.result(id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'compensated');
      assert.deepEqual(await keysOf(ledger, 'undo'), [`${id}:a:compensate`]);
      // b hung and was compensated (tombstoned) as possibly in flight; c never ran.
      assert.ok(!flow.calls.includes('c:1'));
      assert.ok((events['lease-lost']?.length ?? 0) + (events['lease-taken']?.length ?? 0) >= 1);
    });

    it('refuses a second saga on a locked business key, or queues it behind the first', async () => {
      const { flow, orchestrator, sagas, store } = await setup((ledger, flow) => [
        ledgerSaga(ledger, flow, ['a', 'b'], { name: 'Refusing', lock: true }),
        ledgerSaga(ledger, flow, ['a', 'b'], { name: 'Queueing', lock: true, onLocked: 'queue' }),
      ]);
      const [refusing, queueing] = sagas as [SagaDefinition, SagaDefinition];
      flow.faults.set('b', ['hang']);
      const holder = await orchestrator.start(refusing, { orderId: 'k1', amount: 1 });
      while (!flow.calls.includes('b:1')) await sleep(5);
      const refused = await orchestrator.start(refusing, { orderId: 'k1', amount: 2 }).catch((e: unknown) => e);
      assert.ok(refused instanceof SagaLockedError, String(refused));
      assert.equal(refused.holder, holder.id);
      assert.equal(refused.status, 409);
      const queued = await orchestrator.start(queueing, { orderId: 'k1', amount: 3 });
      assert.equal(queued.state, 'queued');
      const count = await sql<{ n: number }>`select count(*) as n from saga_instances`.execute(store.db);
      assert.equal(Number(count.rows[0]?.n), 2, 'the refused saga left nothing behind');
      // The holder is released by a timeout... here, by an operator; then the queued saga runs.
      await new SagaAdmin({ store, sagas }).forceCompensate(holder.id, { actor: 'test', reason: 'free the key' });
      assert.equal((await orchestrator.result(holder.id, { timeoutMs: 10_000 })).state, 'compensated');
      assert.equal((await orchestrator.result(queued.id, { timeoutMs: 10_000 })).state, 'completed');
    });

    it('compensates a saga that misses its deadline before the pivot, and reports overdue ones', async () => {
      const { flow, orchestrator, sagas } = await setup((ledger, flow) => [
        ledgerSaga(ledger, flow, ['a', 'b', 'c'], { name: 'Deadline', deadlineMs: 150 }),
        ledgerSaga(ledger, flow, ['x', 'y'], { name: 'Late', deadlineMs: 100, pivotAt: 0 }),
      ]);
      const events = recordEvents(orchestrator);
      flow.faults.set('b', ['hang']);
      flow.faults.set('y', ['hang']);
      const { id } = await orchestrator.start((sagas[0] as SagaDefinition), { orderId: 'o', amount: 1 });
      const outcome = await orchestrator.result(id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'compensated');
      assert.equal(outcome.failedStep, 'b');
      assert.match(outcome.error ?? '', /deadline/i);
      // Past its pivot a saga is not compensated for lateness; it is reported.
      const late = await orchestrator.start((sagas[1] as SagaDefinition), { orderId: 'o', amount: 1 });
      while (!(events.overdue ?? []).some((e) => e.sagaId === late.id)) await sleep(20);
      assert.equal(events.overdue?.find((e) => e.sagaId === late.id)?.state, 'running');
    });

    it('never undoes a pivot that may have committed: an ambiguous pivot failure is stuck, and the deadline does not cut a pivot off', async () => {
      let slowPivotMs = 0;
      const calls: string[] = [];
      const { orchestrator, sagas, ledger } = await setup((ledger) => [
        defineSaga('Pivotal', { input: (raw) => raw as { n: number }, deadlineMs: 300 })
          .step('reserve', {
            invoke: async (_d, ctx) => void (await ledger.apply(ctx.idempotencyKey)),
            compensate: async (_d, ctx) => {
              calls.push('reserve:compensate');
              await ledger.undo(ctx.invokeKey, ctx.idempotencyKey);
            },
          })
          .step('confirm', {
            pivot: true,
            attemptTimeoutMs: 1_000,
            retry: { maxAttempts: 2, backoff: { baseMs: 1, capMs: 2 } },
            invoke: async (_d, ctx) => {
              // The effect commits, then the answer is slow: as seen from the saga, the outcome is unknown.
              await ledger.apply(ctx.idempotencyKey);
              await new Promise((resolve) => setTimeout(resolve, slowPivotMs));
            },
          })
          .build(),
      ]);
      slowPivotMs = 10_000;
      const stuck = await orchestrator.start(sagas[0] as SagaDefinition, { n: 1 });
      const outcome = await orchestrator.result(stuck.id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'stuck', 'not compensated: the confirmation may stand');
      assert.equal(outcome.failedStep, 'confirm');
      assert.deepEqual(calls, []);
      assert.deepEqual(await keysOf(ledger, 'undo'), []);
      // A pivot that starts before the deadline and ends after it completes the saga.
      // (the deadline is 300 ms from the start; the pivot starts well inside it and takes 400 ms)
      slowPivotMs = 400;
      const late = await orchestrator.start(sagas[0] as SagaDefinition, { n: 2 });
      const done = await orchestrator.result(late.id, { timeoutMs: 10_000 });
      assert.equal(done.state, 'completed', 'a started pivot is not cut off by the saga deadline');
    });

    it('rejects bad input before persisting anything, and starts once per id', async () => {
      const { orchestrator, sagas, store } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a'])]);
      const def = (sagas[0] as SagaDefinition);
      await assert.rejects(orchestrator.start(def, { orderId: 42 }), (e: unknown) => e instanceof InvalidSagaInputError && /orderId/.test(e.message) && e.status === 400);
      const count = await sql<{ n: number }>`select count(*) as n from saga_instances`.execute(store.db);
      assert.equal(Number(count.rows[0]?.n), 0);
      const first = await orchestrator.start(def, { orderId: 'o', amount: 1 }, { id: 'order-o' });
      const again = await orchestrator.start(def, { orderId: 'o', amount: 1 }, { id: 'order-o' });
      assert.equal(first.existing, false);
      assert.equal(again.existing, true);
      assert.equal((await orchestrator.result('order-o', { timeoutMs: 10_000 })).state, 'completed');
    });

    it('starts a saga inside the business transaction: both commit or neither', async () => {
      const { orchestrator, sagas, store } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a'])]);
      const def = (sagas[0] as SagaDefinition);
      await assert.rejects(
        store.transaction(async (tx) => {
          await orchestrator.startIn(tx, def, { orderId: 'rolled-back', amount: 1 }, { id: 'rb' });
          throw new Error('business rule failed');
        }),
        /business rule failed/,
      );
      assert.equal((await new SagaAdmin({ store, sagas }).list()).length, 0);
      const handle = await store.transaction((tx) => orchestrator.startIn(tx, def, { orderId: 'kept', amount: 1 }));
      assert.equal((await orchestrator.result(handle.id, { timeoutMs: 10_000 })).state, 'completed');
    });

    it('entry backpressure refuses new sagas while too many recent ones failed', async () => {
      const { flow, orchestrator, sagas } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a'])], {
        entryBreaker: { failureRateThreshold: 0.2, minimumSagas: 5, windowMs: 60_000 },
      });
      const def = (sagas[0] as SagaDefinition);
      flow.faults.set('a', ['refuse', 'refuse']);
      for (let i = 0; i < 5; i++) await orchestrator.result((await orchestrator.start(def, { orderId: `o${i}`, amount: 1 })).id, { timeoutMs: 10_000 });
      const refused = await orchestrator.start(def, { orderId: 'next', amount: 1 }).catch((e: unknown) => e);
      assert.ok(refused instanceof SagaRefusedError, String(refused));
      assert.equal(refused.failureRate, 0.4);
      assert.equal(refused.status, 503);
    });

    it('stores any error text (NUL included) and names each instance uniquely even when given one name', async () => {
      const { orchestrator, sagas, open } = await setup(() => [
        defineSaga('Nul', { input: (raw) => raw as { n: number } })
          .step('a', { invoke: async () => undefined, compensate: async () => undefined })
          .step('b', {
            pivot: true,
            invoke: async () => {
              throw Object.assign(new Error('bad\u0000byte'), { retryable: false });
            },
          })
          .build(),
      ]);
      const { id } = await orchestrator.start(sagas[0] as SagaDefinition, { n: 1 });
      const outcome = await orchestrator.result(id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'compensated');
      assert.match(outcome.error ?? '', /bad\\u0000byte/);
      const [x, y] = [await open({ owner: 'pod-a' }), await open({ owner: 'pod-a' })];
      assert.match(x.owner, /^pod-a:/);
      assert.notEqual(x.owner, y.owner);
    });

    it('leaves sagas beyond maxConcurrent unowned and claims them as slots free up', async () => {
      const { ledger, orchestrator, sagas, store } = await setup((ledger, flow) => [ledgerSaga(ledger, flow, ['a', 'b'])], { maxConcurrent: 2 });
      const handles = await Promise.all(Array.from({ length: 12 }, (_, i) => orchestrator.start(sagas[0] as SagaDefinition, { orderId: `o${i}`, amount: i })));
      const unowned = await sql<{ n: number }>`select count(*) as n from saga_instances where owner is null and lease_until = 0`.execute(store.db);
      assert.ok(Number(unowned.rows[0]?.n) >= 1, 'some sagas waited for a slot');
      for (const h of handles) assert.equal((await orchestrator.result(h.id, { timeoutMs: 10_000 })).state, 'completed');
      assert.equal((await keysOf(ledger, 'do')).length, 24);
    });

    it('a saga finishes on the version it started with; a restarted orchestrator resumes it', async () => {
      const v1Calls: string[] = [];
      const v2Calls: string[] = [];
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const make = (version: number, calls: string[], wait: boolean) =>
        defineSaga('Versioned', { version, input: (raw) => raw as { n: number } })
          .step('one', { invoke: async () => void calls.push('one'), compensate: async () => undefined })
          .step('two', {
            invoke: async (_d, ctx) => {
              calls.push('two');
              if (wait) await Promise.race([gate, new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))]);
            },
            pivot: true,
          })
          .build();
      const v1 = make(1, v1Calls, true);
      const v2 = make(2, v2Calls, false);
      const { orchestrator, open } = await setup(() => [v1]);
      const { id } = await orchestrator.start(v1, { n: 1 });
      while (!v1Calls.includes('two')) await sleep(5);
      await orchestrator.close({ drainMs: 10 });
      release();
      let events: ReturnType<typeof recordEvents> = {};
      const next = await open({ sagas: [v1, v2], owner: 'next' }, (o) => (events = recordEvents(o)));
      const outcome = await next.result(id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, 'completed');
      assert.deepEqual(v2Calls, [], 'the v1 saga never ran v2 steps');
      assert.deepEqual(v1Calls, ['one', 'two', 'two'], 'resumed at the step that was not recorded');
      assert.ok(events['lease-taken']?.some((e) => e.sagaId === id && e.version === 1 && e.epoch === 2));
      const fresh = await next.start(v2, { n: 2 });
      assert.equal((await next.result(fresh.id, { timeoutMs: 10_000 })).state, 'completed');
      assert.deepEqual(v2Calls, ['one', 'two']);
    });
  });
}
