import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { openStore, sql, type Store } from '../index.js';
import { preparedQuery } from './prepared.js';
import { testDatabase } from '../testing/databases.js';

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`preparedQuery on ${engine}`, () => {
    let store: Store<unknown>;
    const cleanups: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    it('runs like any query, with array parameters on PostgreSQL', async () => {
      const d = await testDatabase(engine, 'prep');
      store = await openStore({ module: d.module, url: d.url, migrations: [{ id: '1_t', up: (db) => db.schema.createTable('t').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('n', 'integer').execute() }] });
      cleanups.push(d.cleanup, () => store.close());
      const insert = engine === 'postgres' ? 'insert into t (id, n) select * from unnest($1::text[], $2::int[]) on conflict do nothing returning id' : 'insert into t (id, n) values (?, ?), (?, ?) on conflict do nothing returning id';
      const params = engine === 'postgres' ? [['a', 'b'], [1, 2]] : ['a', 1, 'b', 2];
      const first = await store.db.executeQuery<{ id: string }>(preparedQuery(insert, params));
      const again = await store.db.executeQuery<{ id: string }>(preparedQuery(insert, params));
      assert.deepEqual(first.rows.map((r) => r.id).sort(), ['a', 'b']);
      assert.deepEqual(again.rows, [], 'the second run inserted nothing (same statement, same answer)');
    });

    if (engine === 'postgres') {
      it('is a named statement on the connection, parsed once per connection', async () => {
        const text = 'select count(*)::int as n from t where n >= $1';
        const names = await store.transaction(async (tx) => {
          for (let i = 0; i < 3; i++) assert.equal((await tx.db.executeQuery<{ n: number }>(preparedQuery(text, [1]))).rows[0]?.n, 2);
          return (await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(tx.db)).rows;
        });
        const mine = names.filter((r) => r.statement === text);
        assert.equal(mine.length, 1);
        assert.match(mine[0]?.name ?? '', /^bulwark_[0-9a-f]{20}$/);
      });
    }
  });
}
