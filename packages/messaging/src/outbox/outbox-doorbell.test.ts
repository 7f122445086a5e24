import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { openFixtureStore, OrderPlaced, testDatabase } from '../testing/messaging-fixture.js';
import { Outbox } from './outbox.js';
import { partitionOf } from './partition.js';

/**
 * The PostgreSQL outbox trigger NOTIFYs only a sleeping relay: one holding
 * the doorbell lock of a partition written to. Notifications arrive in commit
 * order, so a marker NOTIFY sent after the commit tells whether the commit
 * rang, without waiting on a clock.
 */
describe('outbox doorbell on postgres', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('rings only when a relay sleeps on a partition the commit wrote to', async () => {
    const d = await testDatabase('postgres', 'bell');
    const store = await openFixtureStore(d);
    cleanups.push(d.cleanup, () => store.close());
    const channel = `bulwark_${d.module}_outbox`.slice(0, 63);
    const listener = new pg.Client({ connectionString: d.url });
    const sleeper = new pg.Client({ connectionString: d.url, options: `-c search_path=${d.module}` });
    await listener.connect();
    await sleeper.connect();
    cleanups.push(() => listener.end(), () => sleeper.end());
    const heard: string[] = [];
    const waiters: (() => void)[] = [];
    listener.on('notification', (n) => {
      heard.push(n.payload === '' ? 'ring' : (n.payload ?? ''));
      for (const w of waiters.splice(0)) w();
    });
    await listener.query(`listen "${channel}"`);
    let markers = 0;
    /** What the commits since the last call rang, in order, up to a marker. */
    const rangSinceLast = async (): Promise<string[]> => {
      const marker = `marker-${++markers}`;
      await listener.query(`select pg_notify($1, $2)`, [channel, marker]);
      while (!heard.includes(marker)) await new Promise<void>((r) => waiters.push(r));
      return heard.splice(0).filter((h) => h !== marker);
    };
    const outbox = new Outbox();
    const write = (key: string): Promise<unknown> => store.transaction((tx) => outbox.add(tx, 'orders', { type: OrderPlaced, key, payload: { orderId: key, n: 1 } }));
    const keyIn = (partition: number, not = -1): string => {
      for (let i = 0; ; i++) if (partitionOf(`k${i}`) === partition && partition !== not) return `k${i}`;
    };

    // No relay asleep: commits do not ring.
    await write(keyIn(3));
    await write(keyIn(5));
    assert.deepEqual(await rangSinceLast(), []);

    // A relay asleep on partition 3: a commit to partition 3 rings, one to partition 5 does not.
    const { rows } = await sleeper.query<{ k: number }>(`select hashtext('bulwark_outbox:' || current_schema()) as k`);
    await sleeper.query('select pg_advisory_lock($1, 3)', [rows[0]!.k]);
    await write(keyIn(5));
    assert.deepEqual(await rangSinceLast(), []);
    await write(keyIn(3));
    assert.deepEqual(await rangSinceLast(), ['ring']);
    // Several messages in one transaction, one of them on the sleeping partition: one ring.
    await store.transaction(async (tx) => {
      for (const key of [keyIn(5), keyIn(3), keyIn(3), keyIn(9)]) await outbox.add(tx, 'orders', { type: OrderPlaced, key, payload: { orderId: key, n: 2 } });
    });
    assert.deepEqual(await rangSinceLast(), ['ring']);

    // Awake again: silence.
    await sleeper.query('select pg_advisory_unlock_all()');
    await write(keyIn(3));
    assert.deepEqual(await rangSinceLast(), []);
    assert.equal((await store.db.selectFrom('messaging_outbox').selectAll().execute()).length, 9);
  });
});
