/**
 * The contract every store adapter passes, run against the real engine:
 * `describeStoreContract('sqlite')` and `describeStoreContract('postgres')`.
 */
import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { isMigrationMismatchError, isStoreConfigError } from '../errors.js';
import type { Migration, Migrations } from '../migrations.js';
import { openStore, type Store } from '../store.js';
import { contractMigrations, type CounterDb } from './contract-schema.js';
import { testDatabase, type TestDatabase } from './databases.js';

const migrations = contractMigrations;

// Under tsx (the repository's tests) the worker is TypeScript and needs the loader; from dist it is plain JS.
const fromSource = import.meta.url.endsWith('.ts');
const workerPath = fileURLToPath(new URL(fromSource ? './store-worker.ts' : './store-worker.js', import.meta.url));
const workerArgs = fromSource ? ['--import', 'tsx', '--conditions=bulwark:source'] : [];

/** Runs `task` in `n` child processes at once, each with its own connection. */
async function inWorkers(d: TestDatabase, task: 'open' | 'bump', n: number, times = 0): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [...workerArgs, workerPath, JSON.stringify({ url: d.url, module: d.module, task, times })], { stdio: ['ignore', 'inherit', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.once('error', reject);
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`store worker exited with ${code}: ${stderr}`))));
      }),
    ),
  );
}

export function describeStoreContract(engine: 'sqlite' | 'postgres'): void {
  describe(`store contract: ${engine}`, () => {
    const databases: TestDatabase[] = [];
    const stores: Store<unknown>[] = [];
    const fresh = async (): Promise<TestDatabase> => {
      const d = await testDatabase(engine);
      databases.push(d);
      return d;
    };
    const open = async <DB = CounterDb>(d: TestDatabase, m: Migrations = migrations): Promise<Store<DB>> => {
      const store = await openStore<DB>({ module: d.module, url: d.url, migrations: m });
      stores.push(store as Store<unknown>);
      return store;
    };
    after(async () => {
      await Promise.allSettled(stores.map((s) => s.close()));
      await Promise.allSettled(databases.map((d) => d.cleanup()));
    });

    it('applies migrations once, in order, and knows them on the next open', async () => {
      const d = await fresh();
      const first = await open(d);
      assert.equal(first.dialect, engine);
      await first.close();
      const again = await open(d);
      assert.deepEqual(await again.migrate(), { applied: [], alreadyApplied: 2 });
      const more = await open(d, [...migrations, { id: '0003_more', up: (db) => db.schema.createTable('more').addColumn('x', 'text').execute() }]);
      const rows = await sql<{ id: string }>`select id from bulwark_migrations order by position`.execute(more.db);
      assert.deepEqual(rows.rows.map((r) => r.id), ['0001_counters', '0002_notes', '0003_more']);
    });

    it('keeps named migration sets apart, so a library can add to its own set later', async () => {
      const d = await fresh();
      const lib = [{ id: '0001_lib', up: (db: Parameters<Migration['up']>[0]) => db.schema.createTable('lib_items').addColumn('x', 'text').execute() }];
      await (await open(d, { [d.module]: migrations, lib })).close();
      const grown = [...lib, { id: '0002_lib', up: (db: Parameters<Migration['up']>[0]) => db.schema.createTable('lib_more').addColumn('y', 'text').execute() }];
      const store = await open(d, { [d.module]: migrations, lib: grown });
      assert.deepEqual(await store.migrate(), { applied: [], alreadyApplied: 4 });
      const rows = await sql<{ set_name: string; id: string }>`select set_name, id from bulwark_migrations order by set_name, position`.execute(store.db);
      const labels = rows.rows.map((r) => `${r.set_name === d.module ? 'module' : r.set_name}:${r.id}`).sort();
      assert.deepEqual(labels, ['lib:0001_lib', 'lib:0002_lib', 'module:0001_counters', 'module:0002_notes']);
    });

    it('refuses to start when an applied migration was removed or reordered', async () => {
      const d = await fresh();
      await (await open(d)).close();
      await assert.rejects(open(d, [migrations[0]!]), (e: unknown) => isMigrationMismatchError(e) && e.migration === '0002_notes');
      await assert.rejects(open(d, [migrations[1]!, migrations[0]!]), (e: unknown) => isMigrationMismatchError(e) && /position 0/.test(e.message));
    });

    it('applies each migration once when several processes open at the same moment', async () => {
      const d = await fresh();
      await inWorkers(d, 'open', 3);
      const store = await open(d);
      const rows = await sql<{ n: number }>`select count(*) as n from bulwark_migrations`.execute(store.db);
      assert.equal(Number(rows.rows[0]!.n), 2);
    });

    it('commits every write of a unit of work together, and runs afterCommit hooks after', async () => {
      const d = await fresh();
      const store = await open(d);
      const events: string[] = [];
      await store.transaction(async (tx) => {
        await tx.db.insertInto('counters').values({ name: 'a', value: 1 }).execute();
        await tx.db.insertInto('notes').values({ body: 'a made' }).execute();
        tx.afterCommit(() => events.push('committed'));
        events.push('in transaction');
      });
      assert.deepEqual(events, ['in transaction', 'committed']);
      assert.equal((await store.db.selectFrom('counters').selectAll().execute()).length, 1);
      assert.equal((await store.db.selectFrom('notes').selectAll().execute()).length, 1);
    });

    it('rolls back every write when the unit of work throws, and skips its hooks', async () => {
      const d = await fresh();
      const store = await open(d);
      let hooked = false;
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.db.insertInto('counters').values({ name: 'b', value: 1 }).execute();
          await tx.db.insertInto('notes').values({ body: 'b made' }).execute();
          tx.afterCommit(() => (hooked = true));
          throw new Error('business rule failed');
        }),
        /business rule failed/,
      );
      assert.equal(hooked, false);
      assert.equal((await store.db.selectFrom('counters').selectAll().execute()).length, 0);
      assert.equal((await store.db.selectFrom('notes').selectAll().execute()).length, 0);
    });

    it('runs commit writes with the commit, in order, merged as queued, and never after a rollback', async () => {
      const d = await fresh();
      const store = await open(d);
      const built: string[] = [];
      await store.transaction(async (tx) => {
        const bodies: string[] = [];
        tx.atCommit(() => {
          built.push(`notes x${bodies.length}`);
          return bodies.length === 0 ? undefined : tx.db.insertInto('notes').values(bodies.map((body) => ({ body }))).compile();
        });
        tx.atCommit(() => {
          built.push('counter');
          return tx.db.insertInto('counters').values({ name: 'c', value: 7 }).compile();
        });
        bodies.push('first', 'second');
        // Queued, not yet written: the transaction does not see its commit writes.
        assert.equal((await tx.db.selectFrom('notes').selectAll().execute()).length, 0);
        assert.deepEqual(built, []);
        bodies.push('third');
      });
      assert.deepEqual(built, ['notes x3', 'counter']);
      assert.deepEqual((await store.db.selectFrom('notes').select('body').orderBy('id').execute()).map((r) => r.body), ['first', 'second', 'third']);
      assert.deepEqual(await store.db.selectFrom('counters').selectAll().execute(), [{ name: 'c', value: 7 }]);

      let ran = false;
      await assert.rejects(
        store.transaction((tx) => {
          tx.atCommit(() => {
            ran = true;
            return tx.db.insertInto('notes').values({ body: 'never' }).compile();
          });
          return Promise.reject(new Error('business rule failed'));
        }),
        /business rule failed/,
      );
      assert.equal(ran, false);
      assert.equal((await store.db.selectFrom('notes').selectAll().execute()).length, 3);
    });

    it('rolls the whole transaction back when a commit write fails, and rejects with its error', async () => {
      const d = await fresh();
      const store = await open(d);
      await store.transaction((tx) => tx.db.insertInto('counters').values({ name: 'taken', value: 1 }).execute());
      let hooked = false;
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.db.insertInto('notes').values({ body: 'made before the commit' }).execute();
          tx.atCommit(() => tx.db.insertInto('notes').values({ body: 'a commit write' }).compile());
          tx.atCommit(() => tx.db.insertInto('counters').values({ name: 'taken', value: 2 }).compile()); // primary key violation
          tx.afterCommit(() => (hooked = true));
        }),
        /unique|UNIQUE|duplicate/,
      );
      assert.equal(hooked, false);
      assert.equal((await store.db.selectFrom('notes').selectAll().execute()).length, 0);
      assert.deepEqual(await store.db.selectFrom('counters').selectAll().execute(), [{ name: 'taken', value: 1 }]);
      // The connection is healthy afterwards.
      await store.transaction((tx) => Promise.resolve(tx.atCommit(() => tx.db.insertInto('notes').values({ body: 'after' }).compile())));
      assert.equal((await store.db.selectFrom('notes').selectAll().execute()).length, 1);
    });

    it('writes awkward values through a commit write exactly as through a query', async () => {
      const d = await fresh();
      const store = await open(d);
      const awkward = ["it's", 'back\\slash \\x00', '$1 $2 placeholder-looking', 'line\nbreak\ttab', 'ünïcødé 漢字 🚀', "'); drop table notes; --", '', '\\'];
      await store.transaction((tx) => {
        for (const body of awkward) tx.atCommit(() => tx.db.insertInto('notes').values({ body }).compile());
        tx.atCommit(() => tx.db.insertInto('counters').values({ name: 'n', value: -42 }).compile());
        return Promise.resolve();
      });
      assert.deepEqual((await store.db.selectFrom('notes').select('body').orderBy('id').execute()).map((r) => r.body), awkward);
      assert.deepEqual(await store.db.selectFrom('counters').selectAll().execute(), [{ name: 'n', value: -42 }]);
    });

    it('loses no update under concurrent transactions', async () => {
      const d = await fresh();
      const store = await open(d);
      await store.db.insertInto('counters').values({ name: 'c', value: 0 }).execute();
      await Promise.all(
        Array.from({ length: 40 }, () =>
          store.transaction(async (tx) => {
            const row = await tx.forUpdate(tx.db.selectFrom('counters').select('value').where('name', '=', 'c')).executeTakeFirstOrThrow();
            await tx.db.updateTable('counters').set({ value: row.value + 1 }).where('name', '=', 'c').execute();
          }),
        ),
      );
      const row = await store.db.selectFrom('counters').select('value').where('name', '=', 'c').executeTakeFirstOrThrow();
      assert.equal(row.value, 40);
    });

    it('loses no update when several processes write the same row', async () => {
      const d = await fresh();
      const store = await open(d);
      await store.db.insertInto('counters').values({ name: 'd', value: 0 }).execute();
      await inWorkers(d, 'bump', 3, 15);
      const row = await store.db.selectFrom('counters').select('value').where('name', '=', 'd').executeTakeFirstOrThrow();
      assert.equal(row.value, 45);
    });

    it('sends a commit signal after a commit, never after a rollback', async () => {
      const d = await fresh();
      const store = await open(d);
      let woken = 0;
      let wake!: () => void;
      const first = new Promise<void>((resolve) => (wake = resolve));
      await store.onSignal('outbox', () => {
        woken++;
        wake();
      });
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.db.insertInto('notes').values({ body: 'never committed' }).execute();
          tx.signal('outbox');
          throw new Error('rolled back');
        }),
      );
      await store.transaction(async (tx) => {
        await tx.db.insertInto('notes').values({ body: 'signal' }).execute();
        tx.signal('outbox');
      });
      await first;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(woken, 1);
    });

    if (engine === 'postgres') {
      it('keeps its commit signals and its pool through the loss of every connection', async () => {
        const d = await fresh();
        const store = await open(d);
        let woken = 0;
        await store.onSignal('outbox', () => woken++);
        const killed = await sql<{ n: number }>`
          select count(pg_terminate_backend(pid)) as n from pg_stat_activity
          where application_name in (${`bulwark:${d.module}`}, ${`bulwark:${d.module}:listen`}) and pid <> pg_backend_pid()`.execute(store.db);
        assert.ok(Number(killed.rows[0]!.n) >= 1, 'the listening connection was terminated');
        // After it reconnects the listener wakes everyone once (notifications may have been missed)...
        const deadline = Date.now() + 10_000;
        while (woken === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        assert.ok(woken >= 1, 'the listener reconnected');
        // ...and hears the next commit, through a pool that replaced its dead connections.
        const before = woken;
        let committed = false;
        for (let i = 0; i < 5 && !committed; i++) {
          committed = await store
            .transaction(async (tx) => {
              await tx.db.insertInto('notes').values({ body: 'after the outage' }).execute();
              tx.signal('outbox');
            })
            .then(
              () => true,
              () => false, // a pooled connection that died with the others fails once
            );
        }
        assert.ok(committed);
        while (woken === before && Date.now() < deadline + 5_000) await new Promise((resolve) => setTimeout(resolve, 20));
        assert.ok(woken > before, 'a commit signal after the reconnect is heard');
      });
    }

    it('keeps each module\'s tables to itself', async () => {
      const one = await fresh();
      const two = await fresh();
      const a = await open(one);
      const b = await open(engine === 'postgres' ? { ...two, url: one.url } : two);
      await a.db.insertInto('counters').values({ name: 'only-in-a', value: 1 }).execute();
      assert.equal((await b.db.selectFrom('counters').selectAll().execute()).length, 0);
    });

    it('stops start-up with a config error naming the key', async () => {
      await assert.rejects(openStore({ module: 'Bad-Name', url: 'sqlite::memory:' }), (e: unknown) => isStoreConfigError(e) && e.key === 'module');
      await assert.rejects(openStore({ module: 'ok', url: 'mysql://x' }), (e: unknown) => isStoreConfigError(e) && e.key === 'url');
      await assert.rejects(openStore({ module: 'ok', url: 'sqlite::memory:', durability: 'fast' as never }), (e: unknown) => isStoreConfigError(e) && e.key === 'durability');
    });
  });
}
