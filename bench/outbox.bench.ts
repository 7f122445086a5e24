/**
 * `npm run bench:outbox`: the transactional outbox end to end on PostgreSQL
 * and NATS JetStream, against the two ceilings it sits between, in one run:
 *
 *   (a) pg_commit_per_s     small single-row commits per second, 16 at a time, on the same pool settings
 *   (b) nats_publish_per_s  raw JetStream publishes with acks from one client, 32 in flight
 *   (c) outbox_msgs_per_s   business commit (row + outbox) -> relay -> JetStream -> consumer (inbox + effect)
 *                           committed, 16 producers flat out, until every message is handled; the
 *                           handler writes its effect row as a commit write (`tx.atCommit`)
 *   (c') the same with the handler's effect row as an awaited insert (a round trip per message)
 *   (d) e2e latency         commit-to-handled p50/p99 at a fixed, open-model offered rate of half of
 *                           min(a, b) — arrivals on a schedule, never waiting for the previous one
 *   (e) the same at half of (c), a rate the pipeline can sustain: the latency of wake-on-commit itself
 *
 * Producer, relay and consumer share this one Node process (one core) and the machine's second core
 * with PostgreSQL and NATS, as the `monolith` topology would.
 *
 * Needs the servers in ../shared/SERVICES.md. The last line is one JSON object of figures.
 */
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Consumer, Handlers, Outbox, OutboxRelay, messagingMigrations } from '@bulwark/messaging';
import { connectNatsTransport } from '@bulwark/messaging/nats';
import { openStore, type Store } from '@bulwark/store';
import { dropPostgresSchema, requirePostgres, testPostgresUrl } from '@bulwark/store/testing';
import { defineMessage } from '@bulwark/messaging';
import { cpuPerUnit, cpuSample } from './cpu-meter.js';

const natsUrl = process.env.BULWARK_TEST_NATS_URL ?? '127.0.0.1:4222';
const quick = process.argv.includes('--quick');
const seconds = quick ? 2 : 5;

interface BenchDb {
  orders: { id: string; status: string };
  effects: { message_id: string; group_name: string; value: number };
}

const OrderPlaced = defineMessage('OrderPlaced', 1, (p) => p as { orderId: string; n: number });

const migrations = [
  {
    id: '0001_bench',
    up: async (db: Parameters<(typeof messagingMigrations)[number]['up']>[0]) => {
      await db.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('status', 'text', (c) => c.notNull()).execute();
      await db.schema.createTable('effects').addColumn('message_id', 'text', (c) => c.notNull()).addColumn('group_name', 'text', (c) => c.notNull()).addColumn('value', 'integer', (c) => c.notNull()).execute();
    },
  },
];

const SERVERS = ['postgres', 'nats-server'];

interface Phase {
  perS: number;
  /** CPU µs per unit of work: this process, each server, total. */
  cpu: ReturnType<typeof cpuPerUnit>;
}

/** Runs `task` with `concurrency` workers for `ms`, metering CPU; returns completions per second. */
async function metered(concurrency: number, ms: number, task: () => Promise<unknown>): Promise<Phase> {
  let count = 0;
  const before = cpuSample(SERVERS);
  const perS = await closedLoop(concurrency, ms, async () => {
    await task();
    count++;
  });
  return { perS, cpu: cpuPerUnit(before, cpuSample(SERVERS), count) };
}

function cpuText(cpu: Phase['cpu'], unit: string): string {
  return `CPU per ${unit}: ${cpu.totalUs} µs (bench process ${cpu.selfUs}, ${Object.entries(cpu.servers).map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

/** Runs `task` with `concurrency` workers for `ms`; returns completions per second. */
async function closedLoop(concurrency: number, ms: number, task: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + ms;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await task();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

async function pgCeiling(module: string): Promise<Phase> {
  const store = await openStore<BenchDb>({ module, url: testPostgresUrl, migrations: { [module]: migrations } });
  try {
    await closedLoop(16, 500, () => store.transaction((tx) => tx.db.insertInto('orders').values({ id: randomUUID(), status: 'W' }).execute()));
    return await metered(16, seconds * 1000, () => store.transaction((tx) => tx.db.insertInto('orders').values({ id: randomUUID(), status: 'X' }).execute()));
  } finally {
    await store.close();
  }
}

async function natsCeiling(): Promise<Phase> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const name = `BENCH_${randomUUID().slice(0, 8)}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  try {
    const js = jetstream(nc);
    const body = new TextEncoder().encode(JSON.stringify({ id: randomUUID(), type: 'OrderPlaced', version: 1, key: 'k', occurredAt: new Date().toISOString(), headers: {}, payload: { orderId: 'x', n: 1 } }));
    let n = 0;
    const publish = (): Promise<unknown> => js.publish(`${name}.orders`, body, { msgID: `${n++}-${randomUUID()}` });
    await closedLoop(32, 500, publish);
    return await metered(32, seconds * 1000, publish);
  } finally {
    await jsm.streams.delete(name).catch(() => false);
    await nc.close();
  }
}

interface Pipeline {
  store: Store<BenchDb>;
  produce(n: number): Promise<string>;
  handled: Map<string, number>;
  committed: Map<string, number>;
  waitHandled(count: number, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * How the consumer's handler writes its effect row: `awaited` is a plain insert (a round trip per
 * message inside the consumer's batch transaction); `atCommit` queues it as a commit write
 * (`tx.atCommit`), the recommended way for effects the handler does not read back: it rides the
 * batch's COMMIT.
 */
type EffectWrite = 'awaited' | 'atCommit';

async function outboxPipeline(module: string, effect: EffectWrite = 'atCommit'): Promise<Pipeline> {
  const store = await openStore<BenchDb>({ module, url: testPostgresUrl, migrations: { [module]: migrations, messaging: messagingMigrations }, poolSize: 20 });
  const transport = await connectNatsTransport({ servers: natsUrl, streamPrefix: `BENCH_${module.slice(-8)}_` });
  const topic = `bench.${module.slice(-8)}`;
  const outbox = new Outbox();
  const committed = new Map<string, number>();
  const handled = new Map<string, number>();
  const handlers = new Handlers<BenchDb>().on(OrderPlaced, async (payload, { tx, envelope }) => {
    const insert = tx.db.insertInto('effects').values({ message_id: envelope.id, group_name: 'bench', value: payload.n });
    if (effect === 'awaited') await insert.execute();
    else tx.atCommit(() => insert.compile());
    tx.afterCommit(() => handled.set(payload.orderId, performance.now()));
  });
  const consumer = new Consumer({ store, transport, topic, group: 'bench', handlers, concurrency: 16, batchSize: 64 });
  await consumer.start();
  const relay = new OutboxRelay({ store, transport, batchSize: 500 });
  await relay.start();
  return {
    store,
    committed,
    handled,
    async produce(n) {
      const id = randomUUID();
      await store.transaction(async (tx) => {
        await tx.db.insertInto('orders').values({ id, status: 'PLACED' }).execute();
        await outbox.add(tx, topic, { type: OrderPlaced, key: id, payload: { orderId: id, n } });
      });
      committed.set(id, performance.now());
      return id;
    },
    async waitHandled(count, timeoutMs) {
      const end = performance.now() + timeoutMs;
      while (handled.size < count && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
      return handled.size >= count;
    },
    async close() {
      await relay.stop();
      await consumer.stop();
      const nc = await connect({ servers: natsUrl });
      const jsm = await jetstreamManager(nc);
      for await (const s of jsm.streams.list()) if (s.config.name.startsWith(`BENCH_${module.slice(-8)}_`)) await jsm.streams.delete(s.config.name).catch(() => false);
      await nc.close();
      await transport.close();
      await store.close();
    },
  };
}

async function outboxThroughput(module: string, effect: EffectWrite = 'atCommit'): Promise<Phase> {
  const p = await outboxPipeline(module, effect);
  try {
    let n = 0;
    const before = cpuSample(SERVERS);
    const started = performance.now();
    await closedLoop(16, seconds * 1000, () => p.produce(n++));
    const produced = p.committed.size;
    if (!(await p.waitHandled(produced, 120_000))) throw new Error(`outbox throughput: only ${p.handled.size} of ${produced} handled`);
    const cpu = cpuPerUnit(before, cpuSample(SERVERS), produced);
    let last = 0;
    for (const at of p.handled.values()) last = Math.max(last, at);
    return { perS: produced / ((last - started) / 1000), cpu };
  } finally {
    await p.close();
  }
}

async function outboxLatency(module: string, ratePerS: number): Promise<{ p50: number; p99: number; achieved: number; count: number; refused: number }> {
  const p = await outboxPipeline(module);
  try {
    // Warm-up at the same rate, then the measured phase.
    let refused = 0;
    const run = async (ms: number): Promise<string[]> => {
      const ids: Promise<string | undefined>[] = [];
      const interval = 1000 / ratePerS;
      const start = performance.now();
      let next = start;
      let n = 0;
      while (next < start + ms) {
        const wait = next - performance.now();
        // Always yield: a loop that spins until the next arrival starves the event loop (and with
        // it every commit in flight) whenever arrivals are under a millisecond apart.
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else await new Promise((r) => setImmediate(r));
        // Open model: every arrival due by now is started, whether or not earlier ones finished.
        while (next <= performance.now() && next < start + ms) {
          // Over capacity the pool refuses (5 s to get a connection): counted, not measured.
          ids.push(p.produce(n++).catch(() => void refused++));
          next += interval;
        }
      }
      return (await Promise.all(ids)).filter((id): id is string => id !== undefined);
    };
    const warm = await run(1_000);
    await p.waitHandled(warm.length, 60_000);
    refused = 0;
    const before = p.handled.size;
    const started = performance.now();
    const ids = await run(seconds * 1000);
    const elapsed = (performance.now() - started) / 1000;
    await p.waitHandled(before + ids.length, 120_000);
    const latencies = ids.map((id) => (p.handled.get(id) ?? Number.NaN) - (p.committed.get(id) ?? Number.NaN)).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), achieved: ids.length / elapsed, count: latencies.length, refused };
  } finally {
    await p.close();
  }
}

await requirePostgres();
if (process.argv.includes('--only=c')) {
  // Profiling aid: part (c) alone.
  const m = `bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  try {
    const effect: EffectWrite = process.argv.includes('--effect=awaited') ? 'awaited' : 'atCommit';
    const c = await outboxThroughput(m, effect);
    console.log(`(c) outbox end to end, effect ${effect}: ${c.perS.toFixed(0)} msgs/s; ${cpuText(c.cpu, 'message')}`);
  } finally {
    await dropPostgresSchema(m);
  }
  process.exit(0);
}
const rateArg = process.argv.find((a) => a.startsWith('--latency-at='));
if (rateArg !== undefined) {
  // Profiling aid: the latency phase alone at a given offered rate.
  const m = `bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  try {
    const rate = Number(rateArg.split('=')[1]);
    const l = await outboxLatency(m, rate);
    console.log(`at ${rate}/s offered (${l.achieved.toFixed(0)}/s committed, ${l.refused} refused, ${l.count} measured): p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms`);
  } finally {
    await dropPostgresSchema(m);
  }
  process.exit(0);
}
const modules = Array.from({ length: 5 }, () => `bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
try {
  const a = await pgCeiling(modules[0]!);
  const pg = a.perS;
  console.log(`(a) PostgreSQL single-row commits: ${pg.toFixed(0)}/s; ${cpuText(a.cpu, 'commit')}`);
  const b = await natsCeiling();
  const nats = b.perS;
  console.log(`(b) JetStream publishes with acks: ${nats.toFixed(0)}/s; ${cpuText(b.cpu, 'publish')}`);
  const c = await outboxThroughput(modules[1]!);
  const outbox = c.perS;
  const ceiling = Math.min(pg, nats);
  console.log(`(c) outbox end to end: ${outbox.toFixed(0)} msgs/s (${((outbox / ceiling) * 100).toFixed(0)}% of min(a, b); the handler's effect row is a commit write); ${cpuText(c.cpu, 'message')}`);
  const c2 = await outboxThroughput(modules[4]!, 'awaited');
  const awaited = c2.perS;
  console.log(`(c') the same with the effect row as an awaited insert: ${awaited.toFixed(0)} msgs/s (${((awaited / ceiling) * 100).toFixed(0)}% of min(a, b)); ${cpuText(c2.cpu, 'message')}`);
  const offered = Math.round(ceiling / 2);
  const latency = await outboxLatency(modules[2]!, offered);
  console.log(`(d) at ${offered}/s offered (${latency.achieved.toFixed(0)}/s committed, ${latency.refused} refused by the pool, ${latency.count} measured): commit-to-handled p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms`);
  const sustainable = Math.round(outbox / 2);
  const calm = await outboxLatency(modules[3]!, sustainable);
  console.log(`(e) at ${sustainable}/s offered (${calm.achieved.toFixed(0)}/s achieved, ${calm.count} messages): commit-to-handled p50 ${calm.p50.toFixed(1)} ms, p99 ${calm.p99.toFixed(1)} ms`);
  console.log(
    JSON.stringify({
      bench: 'outbox',
      pg_commit_per_s: Math.round(pg),
      nats_publish_per_s: Math.round(nats),
      outbox_msgs_per_s: Math.round(outbox),
      outbox_vs_ceiling: +(outbox / ceiling).toFixed(3),
      outbox_awaited_effect_msgs_per_s: Math.round(awaited),
      outbox_awaited_effect_vs_ceiling: +(awaited / ceiling).toFixed(3),
      cpu_us_per_pg_commit: a.cpu.totalUs,
      cpu_us_per_nats_publish: b.cpu.totalUs,
      cpu_us_per_outbox_msg: c.cpu.totalUs,
      cpu_us_per_outbox_msg_awaited_effect: c2.cpu.totalUs,
      offered_per_s: offered,
      achieved_per_s: Math.round(latency.achieved),
      refused_at_offered: latency.refused,
      e2e_p50_ms: +latency.p50.toFixed(2),
      e2e_p99_ms: +latency.p99.toFixed(2),
      sustainable_offered_per_s: sustainable,
      sustainable_e2e_p50_ms: +calm.p50.toFixed(2),
      sustainable_e2e_p99_ms: +calm.p99.toFixed(2),
    }),
  );
} finally {
  await Promise.allSettled(modules.map((m) => dropPostgresSchema(m)));
}
