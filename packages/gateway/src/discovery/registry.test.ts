import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '@bulwark/resilience/testing';
import { openStore, type Store } from '@bulwark/store';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import { createUpstream, gatewayMigrations, liveInstances, pruneInstances, registerInstance, registryDiscovery } from '../balancing/index.js';

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`instance registry on ${engine}`, () => {
    let database: TestDatabase;
    let store: Store<never>;
    before(async () => {
      database = await testDatabase(engine, 'gw');
      store = await openStore<never>({ module: database.module, url: database.url, migrations: { [database.module]: [], gateway: gatewayMigrations } });
    });
    after(async () => {
      await store.close();
      await database.cleanup();
    });

    it('registers, heartbeats, expires after the TTL, and deregisters', async () => {
      const clock = new VirtualClock();
      let wall = 1_000_000;
      const now = () => wall;
      const a = await registerInstance(store, { service: 'users', id: 'a', url: 'http://127.0.0.1:3001/', metadata: { zone: 'z1' } }, { heartbeatMs: 1_000, clock, now });
      const b = await registerInstance(store, { service: 'users', id: 'b', url: 'http://127.0.0.1:3002', weight: 2 }, { heartbeatMs: 1_000, clock, now });
      await registerInstance(store, { service: 'orders', id: 'o', url: 'http://127.0.0.1:4001' }, { heartbeatMs: 1_000, clock, now });
      assert.deepEqual(await liveInstances(store, 'users', 3_000, wall), [
        { id: 'a', url: 'http://127.0.0.1:3001', weight: 1, metadata: { zone: 'z1' } },
        { id: 'b', url: 'http://127.0.0.1:3002', weight: 2, metadata: {} },
      ]);

      const discovery = registryDiscovery({ store, service: 'users', ttlMs: 3_000, pollMs: 500, clock, now });
      const upstream = createUpstream({ name: 'users', discovery, clock });
      await upstream.ready();
      assert.deepEqual(upstream.instances().map((i) => i.id), ['a', 'b']);
      const poll = async (ms: number): Promise<void> => {
        wall += ms;
        await clock.advance(ms); // heartbeats and polls fire on the virtual clock
        await discovery.poll();
      };

      // Heartbeats keep both alive well past the TTL.
      for (let i = 0; i < 10; i++) await poll(1_000);
      assert.deepEqual(upstream.instances().map((i) => i.id), ['a', 'b']);

      // Deregistration deletes the row; the gateway drops the instance at its next poll.
      await b.deregister();
      assert.deepEqual(upstream.instances().map((i) => i.id), ['a', 'b'], 'until the next poll');
      await poll(500);
      assert.deepEqual(upstream.instances().map((i) => i.id), ['a']);
      await a.deregister();
      await poll(500);
      assert.deepEqual(upstream.instances(), []);
      assert.equal(upstream.pick(), undefined);
      await upstream.close();
    });

    it('drops an instance whose heartbeats stop, once its heartbeat is older than the TTL', async () => {
      const clock = new VirtualClock();
      const crashClock = new VirtualClock(); // the crashed instance's timers never fire again
      let wall = 5_000_000;
      const now = () => wall;
      const alive = await registerInstance(store, { service: 'billing', id: 'alive', url: 'http://127.0.0.1:5001' }, { heartbeatMs: 1_000, clock, now });
      await registerInstance(store, { service: 'billing', id: 'crashed', url: 'http://127.0.0.1:5002' }, { heartbeatMs: 1_000, clock: crashClock, now });
      const discovery = registryDiscovery({ store, service: 'billing', ttlMs: 3_000, clock, now });
      const upstream = createUpstream({ name: 'billing', discovery, clock });
      await upstream.ready();
      assert.deepEqual(upstream.instances().map((i) => i.id), ['alive', 'crashed']);
      const seen: string[][] = [];
      for (let t = 1; t <= 5; t++) {
        wall += 1_000;
        await clock.advance(1_000); // alive's heartbeat timer fires (its write is real I/O) ...
        await alive.heartbeat(); // ... so make sure this second's heartbeat is written before the poll
        await discovery.poll();
        seen.push(upstream.instances().map((i) => i.id));
      }
      // crashed's heartbeat is at 5_000_000: live through +3 s (>= now − ttl), gone from +4 s.
      assert.deepEqual(seen, [['alive', 'crashed'], ['alive', 'crashed'], ['alive', 'crashed'], ['alive'], ['alive']]);
      assert.equal(await pruneInstances(store, { olderThanMs: 3_000, service: 'billing', now: wall }), 1);
      // a heartbeat after pruning re-creates the row
      await store.db.deleteFrom('gateway_instances' as never).execute();
      await alive.heartbeat();
      assert.deepEqual((await liveInstances(store, 'billing', 3_000, wall)).map((i) => i.id), ['alive']);
      await alive.deregister();
      await upstream.close();
    });

    it('keeps the last known instances when a poll fails', async () => {
      const clock = new VirtualClock();
      let wall = 9_000_000;
      const now = () => wall;
      const reg = await registerInstance(store, { service: 'search', id: 's1', url: 'http://127.0.0.1:6001' }, { heartbeatMs: 1_000, clock, now });
      // A store whose database goes away after the first poll.
      let down = false;
      const broken = {
        selectFrom: () => {
          throw new Error('database unreachable');
        },
      };
      const other = Object.create(store, { db: { get: () => (down ? broken : store.db) } }) as Store<never>;
      const errors: unknown[] = [];
      const discovery = registryDiscovery({ store: other, service: 'search', ttlMs: 3_000, clock, now });
      const upstream = createUpstream({ name: 'search', discovery, clock, onError: (e) => errors.push(e) });
      await upstream.ready();
      down = true;
      wall += 1_000;
      await discovery.poll();
      assert.equal(errors.length, 1);
      assert.deepEqual(upstream.instances().map((i) => i.id), ['s1']);
      await upstream.close();
      await reg.deregister();
    });
  });
}
