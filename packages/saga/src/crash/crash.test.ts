/**
 * The saga crash test: a worker process drives 500 sagas (four steps, s4 the
 * pivot; a deterministic rule makes half of them fail at s1, s2, s3 or s4,
 * so completion and compensation both run) and is SIGKILLed at seeded random
 * moments, several times, each time restarted. A restart starts the sagas
 * again with their fixed ids — which starts none twice — and takes over the
 * dead process's sagas once their leases expire. A last run without kills
 * goes on until every saga is settled.
 *
 * Then the databases must hold exactly the one correct outcome: every saga
 * completed or compensated as its rule says, every participant effect once,
 * every compensation undoing an effect that happened, nothing done after the
 * step that failed, and no step recorded as succeeded twice.
 */
import { strict as assert } from 'node:assert';
import { after, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from '@bulwark/resilience/testing';
import { type Store } from '@bulwark/store';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import {
  STEPS,
  failAt,
  kill,
  openLedgerStore,
  openSagaStore,
  readCalls,
  readEffects,
  readInstances,
  readSteps,
  sagaId,
  settledOf,
  spawnWorker,
  stateCounts,
  violations,
  type Databases,
  type Effect,
  type InstanceFacts,
  type StepLogFacts,
  type WorkerConfig,
  type WorkerRun,
} from './fixture.js';

const COUNT = 500;

describe('saga crash test: SIGKILL at random moments, then every saga settled and every effect exactly once', () => {
  const databases: TestDatabase[] = [];
  const stores: Store<unknown>[] = [];
  const runs: WorkerRun[] = [];
  after(async () => {
    await Promise.allSettled(runs.map((r) => kill(r)));
    await Promise.allSettled(stores.map((s) => s.close()));
    await Promise.allSettled(databases.map((d) => d.cleanup()));
  });

  async function crashTest(ctx: TestContext, engine: 'sqlite' | 'postgres', seed: number): Promise<void> {
    const sagaDb = await testDatabase(engine, 'sagacrash');
    const ledgerDb = await testDatabase(engine, 'ledger');
    databases.push(sagaDb, ledgerDb);
    const d: Databases = { sagaUrl: sagaDb.url, sagaModule: sagaDb.module, ledgerUrl: ledgerDb.url, ledgerModule: ledgerDb.module };
    // Migrate before any worker runs; the test reads both databases between kills and at the end.
    const store = await openSagaStore(d);
    const ledgerStore = await openLedgerStore(d);
    stores.push(store, ledgerStore);
    // Few sagas at once per process, so the work spans several kills (SQLite is the quicker of the two here).
    const config: WorkerConfig = { ...d, count: COUNT, start: true, exitWhenDone: true, report: false, leaseMs: 1_000, pollIntervalMs: 100, maxConcurrent: engine === 'sqlite' ? 4 : 15, pause: { kind: 'random', maxMs: 5 } };

    const random = seededRandom(seed);
    const kills = 5 + Math.floor(random() * 4);
    const progress: string[] = [];
    let midway = 0;
    for (let k = 0; k < 12 && (k < kills || midway < 3); k++) {
      const run = spawnWorker(config);
      runs.push(run);
      await run.printed('ready');
      await sleep(200 + Math.floor(random() * 700));
      await kill(run);
      const counts = await stateCounts(store);
      const settled = settledOf(counts);
      const inFlight = (counts.running ?? 0) + (counts.compensating ?? 0);
      progress.push(`${settled}/${inFlight}`);
      if (inFlight > 0) midway++;
      if (settled === COUNT) break;
    }
    ctx.diagnostic(`${engine}: settled/in-flight sagas after each SIGKILL: ${progress.join(', ')}`);
    assert.ok(midway >= 3, `too few kills landed while sagas were in flight (settled/in-flight: ${progress.join(', ')})`);

    const last = spawnWorker(config);
    runs.push(last);
    const timer = setTimeout(() => last.child.kill('SIGKILL'), 60_000);
    const code = await last.exited;
    clearTimeout(timer);
    assert.equal(code, 0, `the final run must settle every saga:\n${last.output.slice(-20).join('\n')}`);

    const instances = await readInstances(store);
    const found = violations(COUNT, instances, await readEffects(ledgerStore), await readSteps(store));
    assert.deepEqual(found.slice(0, 25), [], `${found.length} violations`);

    // The run exercised what it claims to: sagas resumed by another process after a kill, and repeated calls the participant absorbed.
    const calls = await readCalls(ledgerStore);
    const owners = new Map<string, Set<string>>();
    for (const c of calls) owners.set(c.saga_id, (owners.get(c.saga_id) ?? new Set()).add(c.owner));
    const resumed = [...owners.values()].filter((o) => o.size > 1).length;
    const repeats = calls.filter((c) => c.kind !== 'refused' && c.changed === 0).length;
    ctx.diagnostic(`${engine}: ${resumed} sagas had their participants called by more than one process; ${calls.length} participant calls, ${repeats} of them repeats (after a kill) that changed nothing`);
    assert.ok(resumed > 0, 'some sagas must have been resumed by another process after a kill');
    assert.ok(repeats > 0, 'some kills must have landed between a participant effect and the saga recording it');
  }

  it('on SQLite (one file shared by the worker processes and the test)', { timeout: 180_000 }, (ctx) => crashTest(ctx, 'sqlite', 21));
  it('on PostgreSQL', { timeout: 180_000 }, (ctx) => crashTest(ctx, 'postgres', 22));

  it('the checker catches a double effect, an unsettled saga, a missing or stray compensation, and a step driven twice', () => {
    const count = 16;
    const instances: InstanceFacts[] = [];
    const effects: Effect[] = [];
    const steps: StepLogFacts[] = [];
    for (let n = 0; n < count; n++) {
      const id = sagaId(n);
      const failing = failAt(n);
      instances.push({ id, state: failing === undefined ? 'completed' : 'compensated', failed_step: failing ?? null, input: JSON.stringify({ n }), lease_epoch: 1 });
      const done = failing === undefined ? STEPS.length : STEPS.indexOf(failing);
      for (let i = 0; i < done; i++) {
        effects.push({ key: `${id}:${STEPS[i]}`, kind: 'do', undoes: null });
        steps.push({ saga_id: id, step: STEPS[i]!, phase: 'invoke', outcome: 'succeeded' });
        if (failing !== undefined) {
          effects.push({ key: `${id}:${STEPS[i]}:compensate`, kind: 'undo', undoes: `${id}:${STEPS[i]}` });
          steps.push({ saga_id: id, step: STEPS[i]!, phase: 'compensate', outcome: 'succeeded' });
        }
      }
    }
    assert.deepEqual(violations(count, instances, effects, steps), []);
    const broken = (change: { instances?: InstanceFacts[]; effects?: Effect[]; steps?: StepLogFacts[] }): string[] =>
      violations(count, change.instances ?? instances, change.effects ?? effects, change.steps ?? steps);
    const firstDo = effects.find((e) => e.kind === 'do')!;
    // saga-0 completes; saga-3 fails at s2 (s1 compensated); saga-7 fails at the pivot.
    assert.match(broken({ effects: [...effects, firstDo] }).join('\n'), /saga-0:s1 recorded twice/);
    assert.match(broken({ effects: [...effects, { key: 'saga-0:s1#2', kind: 'do', undoes: null }] }).join('\n'), /unexpected do saga-0:s1#2/);
    assert.match(broken({ instances: instances.map((i) => (i.id === 'saga-5' ? { ...i, state: 'running' } : i)) }).join('\n'), /saga-5 is running, expected compensated/);
    assert.match(broken({ instances: instances.map((i) => (i.id === 'saga-2' ? { ...i, state: 'stuck' } : i)) }).join('\n'), /saga-2 is stuck/);
    assert.match(broken({ instances: instances.filter((i) => i.id !== 'saga-4') }).join('\n'), /saga saga-4 is missing/);
    assert.match(broken({ effects: effects.filter((e) => e.key !== 'saga-3:s1:compensate') }).join('\n'), /undo saga-3:s1:compensate never happened/);
    assert.match(broken({ effects: effects.filter((e) => e.key !== 'saga-0:s4') }).join('\n'), /do saga-0:s4 never happened/);
    assert.match(broken({ effects: [...effects, { key: 'saga-3:s2', kind: 'do', undoes: null }] }).join('\n'), /unexpected do saga-3:s2 \(the saga fails at s2\)/);
    assert.match(broken({ effects: [...effects, { key: 'saga-3:s3', kind: 'do', undoes: null }] }).join('\n'), /unexpected do saga-3:s3/);
    assert.match(
      broken({ effects: [...effects.filter((e) => e.key !== 'saga-7:s2'), { key: 'saga-7:s2', kind: 'tombstone', undoes: null }] }).join('\n'),
      /undo saga-7:s2:compensate undoes saga-7:s2, which never happened/,
    );
    assert.match(broken({ steps: [...steps, { saga_id: 'saga-0', step: 's2', phase: 'invoke', outcome: 'succeeded' }] }).join('\n'), /invoke of saga-0:s2 succeeded twice/);
  });
});
