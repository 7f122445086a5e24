/**
 * The crash test: a worker process produces and consumes N messages while it
 * is SIGKILLed at random points and restarted, several times. Afterwards every
 * message's effect must be present exactly once, and none missing.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore, sql, type Store } from '@bulwark/store';
import { seededRandom } from '@bulwark/resilience/testing';
import { messagingMigrations } from '../schema/messaging-migrations.js';
import { fixtureMigrations, testDatabase, type FixtureDb, type TestDatabase } from '../testing/messaging-fixture.js';
import type { CrashWorkerConfig } from './crash-worker.js';

const worker = fileURLToPath(new URL('./crash-worker.ts', import.meta.url));

interface Run {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
  ready: Promise<void>;
}

function start(config: CrashWorkerConfig): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', worker, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      output.push(line);
      if (line === 'ready') markReady();
    }
  });
  child.stderr.on('data', (chunk: Buffer) => output.push(`stderr: ${chunk.toString().trim()}`));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output, exited, ready };
}

async function counts(d: TestDatabase): Promise<{ orders: number; effects: number }> {
  const store = await openStore<FixtureDb>({ module: d.module, url: d.url, migrations: { [d.module]: fixtureMigrations, messaging: messagingMigrations } });
  try {
    const orders = await store.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const effects = await store.db.selectFrom('effects').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { orders: Number(orders.n), effects: Number(effects.n) };
  } finally {
    await store.close();
  }
}

/** Removes the stream the NATS crash run created. */
async function deleteNatsStream(topic: string): Promise<void> {
  const { topicStreamName } = await import('../transport/nats/index.js');
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: process.env.BULWARK_TEST_NATS_URL ?? '127.0.0.1:4222' });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(topicStreamName(topic, 'BULWARK_')).catch(() => false);
  } finally {
    await nc.close();
  }
}

/** Removes the queues the RabbitMQ crash run declared. */
async function deleteRabbitQueues(topic: string, group: string): Promise<void> {
  const { groupQueueNames, delayQueueName, delayBucketMs } = await import('../transport/rabbitmq/index.js');
  const amqp = await import('amqplib');
  const connection = await amqp.connect(process.env.BULWARK_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  try {
    const { queue, deadLetterQueue } = groupQueueNames(topic, group);
    const delays = new Set(Array.from({ length: 200 }, (_, i) => delayQueueName(topic, group, delayBucketMs(i + 1))));
    for (const name of [queue, deadLetterQueue, ...delays]) {
      const channel = await connection.createChannel();
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}

async function crashTest(ctx: TestContext, engine: 'sqlite' | 'postgres', transport: CrashWorkerConfig['transport'], seed: number, databases: TestDatabase[]): Promise<CrashWorkerConfig> {
  const d = await testDatabase(engine, 'crash');
  databases.push(d);
  const bus = transport === 'embedded' ? await testDatabase(engine, 'bus') : undefined;
  if (bus !== undefined) databases.push(bus);
  const count = engine === 'sqlite' ? 2_000 : 300;
  const suffix = d.module.slice(-8);
  const config: CrashWorkerConfig = { url: d.url, module: d.module, transport, count, topic: `crash.${suffix}`, group: `crash-${suffix}`, ...(bus !== undefined ? { busUrl: bus.url, busModule: bus.module } : {}) };
  const random = seededRandom(seed);
  // At least 5 kills, and at least one that interrupted the work midway (some effects in, not all).
  const progress: string[] = [];
  let interruptedMidway = false;
  for (let k = 0; k < 15 && (k < 5 || !interruptedMidway); k++) {
    const run = start(config);
    const outcome = await Promise.race([run.ready.then(() => 'ready' as const), run.exited.then(() => 'exited' as const)]);
    assert.equal(outcome, 'ready', `worker failed to start:\n${run.output.join('\n')}`);
    // Kill it somewhere in its work: producing, relaying, or consuming.
    await new Promise((resolve) => setTimeout(resolve, 10 + Math.floor(random() * 300)));
    run.child.kill('SIGKILL');
    await run.exited;
    const now = await counts(d);
    progress.push(`${now.orders}/${now.effects}`);
    if (now.effects > 0 && now.effects < count) interruptedMidway = true;
  }
  ctx.diagnostic(`orders/effects after each SIGKILL: ${progress.join(', ')}`);
  assert.ok(interruptedMidway, `no kill landed in the middle of the work (${progress.join(', ')})`);
  const last = start(config);
  const timeout = setTimeout(() => last.child.kill('SIGKILL'), 120_000);
  const code = await last.exited;
  clearTimeout(timeout);
  assert.equal(code, 0, `the final run must complete:\n${last.output.slice(-20).join('\n')}`);

  const store: Store<FixtureDb> = await openStore<FixtureDb>({ module: d.module, url: d.url, migrations: { [d.module]: fixtureMigrations, messaging: messagingMigrations } });
  try {
    const effects = await sql<{ total: number; distinct_values: number; min: number; max: number }>`
      select count(*) as total, count(distinct value) as distinct_values, min(value) as min, max(value) as max from effects`.execute(store.db);
    const e = effects.rows[0]!;
    assert.deepEqual(
      { total: Number(e.total), distinct: Number(e.distinct_values), min: Number(e.min), max: Number(e.max) },
      { total: count, distinct: count, min: 0, max: count - 1 },
      'every message applied exactly once, none missing',
    );
    const orders = await store.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    assert.equal(Number(orders.n), count, 'every order produced exactly once');
    const outbox = await sql<{ n: number }>`select count(*) as n from messaging_outbox`.execute(store.db);
    assert.equal(Number(outbox.rows[0]!.n), count, 'one outbox row per order');
  } finally {
    await store.close();
  }
  return config;
}

describe('crash test: SIGKILL at random points, then every effect exactly once', () => {
  const databases: TestDatabase[] = [];
  after(async () => {
    await Promise.allSettled(databases.map((d) => d.cleanup()));
  });
  it('SQLite + embedded transport', { timeout: 300_000 }, async (ctx) => void (await crashTest(ctx, 'sqlite', 'embedded', 11, databases)));
  it('PostgreSQL + embedded transport', { timeout: 300_000 }, async (ctx) => void (await crashTest(ctx, 'postgres', 'embedded', 12, databases)));
  it('PostgreSQL + NATS JetStream', { timeout: 300_000 }, async (ctx) => {
    const config = await crashTest(ctx, 'postgres', 'nats', 14, databases);
    await deleteNatsStream(config.topic);
  });
  it('PostgreSQL + RabbitMQ', { timeout: 300_000 }, async (ctx) => {
    const config = await crashTest(ctx, 'postgres', 'rabbitmq', 13, databases);
    await deleteRabbitQueues(config.topic, config.group);
  });
});
