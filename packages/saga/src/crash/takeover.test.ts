/**
 * The takeover test: two orchestrator processes (owners A and B) on one
 * PostgreSQL schema. B runs first and only polls. A starts 100 sagas whose
 * participant calls take tens of milliseconds, and is SIGKILLed once some
 * of them have settled and the rest are mid-way. B must take over every
 * saga A left unfinished (once its lease expires) and finish it, with every
 * effect exactly once, and no saga driven by both at once.
 */
import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from '@bulwark/resilience/testing';
import { type Store } from '@bulwark/store';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import {
  SETTLED_STATES,
  kill,
  openLedgerStore,
  openSagaStore,
  readCalls,
  readEffects,
  readInstances,
  readSteps,
  settledOf,
  spawnWorker,
  stateCounts,
  violations,
  type Databases,
  type WorkerConfig,
  type WorkerRun,
} from './fixture.js';

const COUNT = 100;

describe('saga takeover: a surviving orchestrator finishes the sagas of a SIGKILLed one', () => {
  const databases: TestDatabase[] = [];
  const stores: Store<unknown>[] = [];
  const runs: WorkerRun[] = [];
  after(async () => {
    await Promise.allSettled(runs.map((r) => kill(r)));
    await Promise.allSettled(stores.map((s) => s.close()));
    await Promise.allSettled(databases.map((d) => d.cleanup()));
  });

  it('on PostgreSQL: the survivor takes over every unfinished saga, effects exactly once, never two drivers at once', { timeout: 120_000 }, async (ctx) => {
    const sagaDb = await testDatabase('postgres', 'sagatakeover');
    const ledgerDb = await testDatabase('postgres', 'ledger');
    databases.push(sagaDb, ledgerDb);
    const d: Databases = { sagaUrl: sagaDb.url, sagaModule: sagaDb.module, ledgerUrl: ledgerDb.url, ledgerModule: ledgerDb.module };
    const store = await openSagaStore(d);
    const ledgerStore = await openLedgerStore(d);
    stores.push(store, ledgerStore);
    const common = { ...d, count: COUNT, leaseMs: 1_000, pollIntervalMs: 100, maxConcurrent: 500, pause: { kind: 'by-saga' } } satisfies Partial<WorkerConfig>;

    const survivor = spawnWorker({ ...common, owner: 'B', start: false, exitWhenDone: true, report: true });
    runs.push(survivor);
    await survivor.printed('ready');
    const victim = spawnWorker({ ...common, owner: 'A', start: true, exitWhenDone: false, report: true });
    runs.push(victim);
    await victim.printed('started');

    // Kill A once a seeded share of the sagas has settled: the others are mid-way through their steps.
    const threshold = 10 + Math.floor(seededRandom(31)() * 30);
    for (;;) {
      const counts = await stateCounts(store);
      if (settledOf(counts) >= threshold) break;
      assert.equal(victim.child.exitCode, null, `A exited early:\n${victim.output.join('\n')}`);
      await sleep(10);
    }
    await kill(victim);
    const atKill = await readInstances(store);
    const unfinished = atKill.filter((i) => !SETTLED_STATES.includes(i.state)).map((i) => i.id);
    const finishedByA = atKill.filter((i) => SETTLED_STATES.includes(i.state)).map((i) => i.id);
    ctx.diagnostic(`A killed with ${finishedByA.length} sagas settled and ${unfinished.length} unfinished (of ${atKill.length})`);
    assert.equal(atKill.length, COUNT, 'A started every saga before it was killed');
    assert.ok(unfinished.length > 0, 'the kill left sagas unfinished');

    const timer = setTimeout(() => survivor.child.kill('SIGKILL'), 60_000);
    const code = await survivor.exited;
    clearTimeout(timer);
    assert.equal(code, 0, `B must settle every saga:\n${survivor.output.slice(-20).join('\n')}`);

    const instances = await readInstances(store);
    const found = violations(COUNT, instances, await readEffects(ledgerStore), await readSteps(store));
    assert.deepEqual(found.slice(0, 25), [], `${found.length} violations`);

    // B took over (a lease epoch after A's) and settled every saga A left unfinished.
    const taken = new Map(survivor.events.filter((e) => e.event === 'lease-taken').map((e) => [e.sagaId, e.epoch ?? 0]));
    const settledByB = new Set(survivor.events.filter((e) => e.event === 'completed' || e.event === 'compensated').map((e) => e.sagaId));
    for (const id of unfinished) {
      assert.ok((taken.get(id) ?? 0) >= 2, `B took over ${id} from A`);
      assert.ok(settledByB.has(id), `B settled ${id}`);
    }
    for (const id of settledByB) assert.ok(taken.has(id), `B settled ${id} only after taking it over`);
    const settledByA = new Set(victim.events.filter((e) => e.event === 'completed' || e.event === 'compensated').map((e) => e.sagaId));
    for (const id of settledByA) assert.ok(!settledByB.has(id), `${id} was settled by A and again by B`);
    ctx.diagnostic(`B took over ${taken.size} sagas and settled ${settledByB.size}; A had settled ${settledByA.size}`);

    // Never two drivers at once: per saga, every participant call of A comes before every call of B.
    // Each instance's owner is its given name plus a random suffix: compare by name.
    const calls = (await readCalls(ledgerStore)).map((c) => ({ ...c, owner: c.owner.split(':')[0] as string }));
    const firstOfB = new Map<string, number>();
    for (const c of calls) if (c.owner === 'B' && !firstOfB.has(c.saga_id)) firstOfB.set(c.saga_id, c.seq);
    const late = calls.filter((c) => c.owner === 'A' && c.seq > (firstOfB.get(c.saga_id) ?? Infinity));
    assert.deepEqual(late.map((c) => `${c.key} (${c.kind}) by A after B began on ${c.saga_id}`), []);
    assert.deepEqual([...new Set(calls.map((c) => c.owner))].sort(), ['A', 'B']);
    // A saga settled when A was killed may have been settled by B: A, slowed down, can miss a lease renewal
    // while still alive, and B then takes that saga over legitimately (fenced: A's later writes are refused).
    // What must never happen is B calling a participant for a saga A itself settled.
    for (const id of settledByA) assert.ok(!firstOfB.has(id), `B called a participant for ${id}, which A had already settled`);
  });
});
