import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { openStore, type Migration, type Store } from '@bulwark/store';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import { httpMigrations, idempotency, kitServerOptions, problem, serviceKit, type HttpTables } from '../index.js';
import { deleteExpired } from './idempotency-records.js';

interface PaymentsDb extends HttpTables {
  payments: { id: string; amount: number; tag: string };
}

const own: Migration[] = [
  {
    id: '20261123T2100_payments',
    up: (db) => db.schema.createTable('payments').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('amount', 'integer', (c) => c.notNull()).addColumn('tag', 'text', (c) => c.notNull()).execute(),
  },
];

const HOUR = 3_600_000;

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`Idempotency-Key on ${engine}`, () => {
    let database: TestDatabase;
    let store: Store<PaymentsDb>;
    let app: FastifyInstance;
    let now = Date.UTC(2026, 10, 23);
    let seq = 0;
    const gates = new Map<string, Promise<void>>();

    before(async () => {
      database = await testDatabase(engine, 'idem');
      store = await openStore<PaymentsDb>({ module: database.module, url: database.url, migrations: { [database.module]: own, http: httpMigrations } });
      app = fastify(kitServerOptions());
      await app.register(serviceKit, { shutdown: { signals: [] }, openapi: false });
      await app.register(idempotency, { store: store as never, identity: (request) => request.headers['x-user'] as string | undefined, lockMs: 30_000, clock: { now: () => now }, cleanupIntervalMs: false });
      app.post<{ Body: { amount: number; tag: string; fail?: boolean } }>(
        '/payments',
        {
          config: { idempotency: { required: true } },
          schema: { body: { type: 'object', required: ['amount', 'tag'], properties: { amount: { type: 'integer', minimum: 1 }, tag: { type: 'string' }, fail: { type: 'boolean' } } } },
        },
        async (request, reply) => {
          await gates.get(request.body.tag);
          await new Promise((resolve) => setTimeout(resolve, 5)); // in flight long enough for duplicates to meet it
          return request.idempotency.transaction<PaymentsDb>(async (tx) => {
            const id = `pay-${++seq}`;
            await tx.db.insertInto('payments').values({ id, amount: request.body.amount, tag: request.body.tag }).execute();
            if (request.body.fail === true) throw problem({ type: 'https://shop.example/problems/declined', status: 402, title: 'Declined' });
            reply.code(201).header('location', `/payments/${id}`).header('x-not-replayed', 'no');
            return { id, amount: request.body.amount };
          });
        },
      );
      app.post<{ Body: { tag: string } }>('/commit-fails', { config: { idempotency: { required: true } } }, async (request) =>
        request.idempotency.transaction<PaymentsDb>(async (tx) => {
          await tx.db.insertInto('payments').values({ id: `pay-${++seq}`, amount: 1, tag: request.body.tag }).execute();
          // A write of the commit that fails (a duplicate primary key): the commit, not the handler, fails.
          tx.atCommit(() => tx.db.insertInto('payments').values({ id: 'pay-dup', amount: 1, tag: 'dup' }).compile());
          tx.atCommit(() => tx.db.insertInto('payments').values({ id: 'pay-dup', amount: 1, tag: 'dup' }).compile());
          return { ok: true };
        }),
      );
      app.post('/optional', { config: { idempotency: true } }, async (request) => request.idempotency.transaction(async () => ({ key: request.idempotency.key ?? null })));
    });

    after(async () => {
      await app.close();
      await store.close();
      await database.cleanup();
    });

    const pay = (key: string | undefined, body: Record<string, unknown>, user?: string): Promise<LightMyRequestResponse> =>
      app.inject({ method: 'POST', url: '/payments', payload: body, headers: { ...(key === undefined ? {} : { 'idempotency-key': key }), ...(user === undefined ? {} : { 'x-user': user }) } });
    const effects = async (tag: string): Promise<number> => (await store.db.selectFrom('payments').select('id').where('tag', '=', tag).execute()).length;
    const records = async (): Promise<number> => (await store.db.selectFrom('http_idempotency').select('idem_key').execute()).length;

    it('100 concurrent requests with one key: exactly one effect, identical responses; the rest 409 with Retry-After or replays', async () => {
      const responses = await Promise.all(Array.from({ length: 100 }, () => pay('key-100', { amount: 500, tag: 'burst' })));
      assert.equal(await effects('burst'), 1);
      const created = responses.filter((r) => r.statusCode === 201);
      const conflicts = responses.filter((r) => r.statusCode === 409);
      assert.equal(created.length + conflicts.length, 100, `statuses: ${[...new Set(responses.map((r) => r.statusCode))].join(',')}`);
      assert.ok(created.length >= 1);
      assert.equal(created.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1, 'one original, the other 201s are replays');
      const original = created.find((r) => r.headers['idempotent-replayed'] === undefined)!;
      for (const r of created) {
        assert.equal(r.body, original.body);
        assert.equal(r.headers.location, original.headers.location);
      }
      for (const r of conflicts) {
        assert.equal(r.headers['retry-after'], '1');
        assert.equal((JSON.parse(r.body) as { type: string }).type, 'https://bulwark.dev/problems/idempotency-in-progress');
      }
      const replay = await pay('key-100', { amount: 500, tag: 'burst' });
      assert.equal(replay.statusCode, 201);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(replay.headers.location, original.headers.location);
      assert.equal(replay.headers['content-type'], original.headers['content-type']);
      assert.equal(replay.headers['x-not-replayed'], undefined, 'only the headers that matter are stored');
      assert.equal(replay.body, original.body);
      assert.equal(await effects('burst'), 1);
    });

    it('the same key with a different body gets 422; key order and whitespace do not change the fingerprint', async () => {
      assert.equal((await pay('key-fp', { amount: 1, tag: 'fp' })).statusCode, 201);
      const reordered = await app.inject({ method: 'POST', url: '/payments', payload: '{ "tag": "fp",   "amount": 1 }', headers: { 'content-type': 'application/json', 'idempotency-key': 'key-fp' } });
      assert.equal(reordered.headers['idempotent-replayed'], 'true');
      const other = await pay('key-fp', { amount: 2, tag: 'fp' });
      assert.equal(other.statusCode, 422);
      assert.equal((JSON.parse(other.body) as { type: string }).type, 'https://bulwark.dev/problems/idempotency-key-reused');
      assert.equal(await effects('fp'), 1);
    });

    it('keys are scoped per caller identity', async () => {
      assert.equal((await pay('shared', { amount: 1, tag: 'scoped' }, 'alice')).statusCode, 201);
      const bob = await pay('shared', { amount: 1, tag: 'scoped' }, 'bob');
      assert.equal(bob.statusCode, 201);
      assert.equal(bob.headers['idempotent-replayed'], undefined);
      assert.equal(await effects('scoped'), 2);
    });

    it('refuses malformed and missing keys with 400, writing nothing', async () => {
      const before = await records();
      for (const key of ['', 'x'.repeat(256), 'has space', 'tab\there', 'ключ']) {
        const res = await pay(key, { amount: 1, tag: 'bad-key' });
        assert.equal(res.statusCode, 400, JSON.stringify(key));
        assert.equal((JSON.parse(res.body) as { type: string }).type, 'https://bulwark.dev/problems/idempotency-key-invalid');
      }
      const missing = await pay(undefined, { amount: 1, tag: 'bad-key' });
      assert.equal(missing.statusCode, 400);
      assert.equal((JSON.parse(missing.body) as { type: string }).type, 'https://bulwark.dev/problems/idempotency-key-missing');
      assert.equal((await pay('x'.repeat(255), { amount: 1, tag: 'max-key' })).statusCode, 201, '255 visible characters is the longest key');
      assert.equal(await effects('bad-key'), 0);
      assert.equal(await records(), before + 1);
      const optional = await app.inject({ method: 'POST', url: '/optional', payload: {} });
      assert.deepEqual(JSON.parse(optional.body), { key: null }, 'an optional key may be left out');
    });

    it('a handler that fails rolls its effect back and releases the key, so a retry runs', async () => {
      const failed = await pay('key-retry', { amount: 3, tag: 'retry', fail: true });
      assert.equal(failed.statusCode, 402);
      assert.equal(await effects('retry'), 0, 'the effect rolled back with the failure');
      const retried = await pay('key-retry', { amount: 3, tag: 'retry', fail: true });
      assert.equal(retried.statusCode, 402, 'the retry ran again (released), it was not a replay nor a 409');
      const invalid = await pay('key-retry', { amount: 0, tag: 'retry' });
      assert.equal(invalid.statusCode, 400, 'schema validation runs before the key is claimed');
      assert.equal(await effects('retry'), 0);
    });

    it('a claim whose holder outlives its lock is taken over; the late holder cannot commit: one effect', async () => {
      let open: () => void = () => undefined;
      gates.set('stuck', new Promise<void>((resolve) => (open = resolve)));
      const stuck = pay('key-stuck', { amount: 9, tag: 'stuck' });
      while ((await store.db.selectFrom('http_idempotency').select('idem_key').where('idem_key', '=', 'key-stuck').execute()).length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5)); // until the first request has claimed the key (it then waits)
      }
      const early = await pay('key-stuck', { amount: 9, tag: 'stuck-2' });
      assert.equal(early.statusCode, 422, 'a different body is still a different request');
      const busy = await pay('key-stuck', { amount: 9, tag: 'stuck' });
      assert.equal(busy.statusCode, 409, 'in progress while the lock holds');
      now += 30_001;
      gates.delete('stuck'); // the taker-over does not wait
      const taker = await pay('key-stuck', { amount: 9, tag: 'stuck' });
      assert.equal(taker.statusCode, 201, 'the lock expired: the key was taken over');
      open();
      const late = await stuck;
      assert.equal(late.statusCode, 409);
      assert.equal((JSON.parse(late.body) as { type: string }).type, 'https://bulwark.dev/problems/idempotency-claim-lost');
      assert.equal(await effects('stuck'), 1);
      const replay = await pay('key-stuck', { amount: 9, tag: 'stuck' });
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(replay.body, taker.body);
    });

    it('records expire after 24 h: cleanup deletes them and the key starts afresh', async () => {
      assert.equal((await pay('key-ttl', { amount: 4, tag: 'ttl' })).statusCode, 201);
      now += 23 * HOUR;
      assert.equal((await pay('key-ttl', { amount: 4, tag: 'ttl' })).headers['idempotent-replayed'], 'true');
      now += 2 * HOUR;
      const deleted = await app.idempotencyKeys.cleanup();
      assert.ok(deleted >= 1);
      const remaining = await store.db.selectFrom('http_idempotency').select('idem_key').where('idem_key', '=', 'key-ttl').execute();
      assert.equal(remaining.length, 0);
      const again = await pay('key-ttl', { amount: 4, tag: 'ttl' });
      assert.equal(again.statusCode, 201);
      assert.equal(again.headers['idempotent-replayed'], undefined);
      assert.equal(await effects('ttl'), 2);
    });

    it('a commit that fails after the handler keeps neither the effect nor the record, and releases the key', async () => {
      const failed = await app.inject({ method: 'POST', url: '/commit-fails', payload: { tag: 'commit-fails' }, headers: { 'idempotency-key': 'key-commit' } });
      assert.equal(failed.statusCode, 500);
      assert.equal(await effects('commit-fails'), 0);
      assert.equal(await effects('dup'), 0);
      const row = await store.db.selectFrom('http_idempotency').select('idem_key').where('idem_key', '=', 'key-commit').execute();
      assert.equal(row.length, 0, 'released, not completed and not left in progress');
      const retried = await app.inject({ method: 'POST', url: '/commit-fails', payload: { tag: 'commit-fails' }, headers: { 'idempotency-key': 'key-commit' } });
      assert.equal(retried.statusCode, 500, 'the retry ran again (released): not a replay nor a 409');
    });

    it('cleanup deletes expired records in batches, all of them, and nothing else', async () => {
      const base = Date.UTC(2001, 0, 1); // long before every other test's records expire
      const row = (key: string, expiresAt: number) => ({ scope: 'cleanup', route: 'POST /x', idem_key: key, fingerprint: 'f', state: 'completed' as const, claim: 't', locked_until: 0, status: 200, headers: '{}', body: '', body_encoding: 'utf8' as const, created_at: base, expires_at: expiresAt });
      await store.db
        .insertInto('http_idempotency')
        .values([...Array.from({ length: 7 }, (_, i) => row(`expired-${i}`, base - 1)), row('live', base + HOUR)])
        .execute();
      assert.equal(await deleteExpired(store as never, base, 3), 7, 'three batches: 3 + 3 + 1');
      const left = await store.db.selectFrom('http_idempotency').select('idem_key').where('scope', '=', 'cleanup').execute();
      assert.deepEqual(left.map((r) => r.idem_key), ['live']);
      assert.equal(await deleteExpired(store as never, base, 3), 0);
    });
  });
}
