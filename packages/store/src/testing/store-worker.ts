/**
 * A child process of the store contract suite: several of them open and write
 * one database at once, as a service's processes would. (SQLite's driver is
 * synchronous, so two connections in one process would block each other's
 * event loop instead of contending.)
 */
import { openStore } from '../store.js';
import { contractMigrations, type CounterDb } from './contract-schema.js';

const { url, module, task, times } = JSON.parse(process.argv[2] ?? '{}') as { url: string; module: string; task: 'open' | 'bump'; times: number };
const store = await openStore<CounterDb>({ module, url, migrations: contractMigrations });
try {
  if (task === 'bump') {
    for (let i = 0; i < times; i++) {
      await store.transaction(async (tx) => {
        const row = await tx.forUpdate(tx.db.selectFrom('counters').select('value').where('name', '=', 'd')).executeTakeFirstOrThrow();
        await tx.db.updateTable('counters').set({ value: row.value + 1 }).where('name', '=', 'd').execute();
      });
    }
  }
} finally {
  await store.close();
}
