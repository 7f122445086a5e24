/**
 * The NATS transport against the real server (127.0.0.1:4222, or BULWARK_TEST_NATS_URL):
 * the shared conformance suite, then what is specific to JetStream. Every
 * stream this file creates carries a per-run prefix and is deleted at the end.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AckPolicy, DeliverPolicy, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { describeTransportConformance, DeliveryLog, testEnvelope } from '../../testing/index.js';
import type { Transport } from '../transport.js';
import { connectNatsTransport, DeadLetterHeaders, groupConsumerName, NatsDelivery, NatsTransport, readNatsDeadLetters, type NatsTransportOptions } from './index.js';

const servers = process.env.BULWARK_TEST_NATS_URL ?? '127.0.0.1:4222';
const run = randomUUID().slice(0, 8);
const streamPrefix = `TEST_${run}_`;
const subjectPrefix = `test-${run}.`;
const opened: Transport[] = [];

async function open(options: Partial<NatsTransportOptions> = {}): Promise<NatsTransport> {
  const t = await connectNatsTransport({ servers, name: `bulwark-test-${run}`, streamPrefix, subjectPrefix, ...options });
  opened.push(t);
  return t;
}

let admin: { nc: NatsConnection; jsm: JetStreamManager } | undefined;
async function manager(): Promise<JetStreamManager> {
  if (admin === undefined) {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, name: `bulwark-test-admin-${run}` });
    } catch (error) {
      throw new Error(`NATS is not reachable at ${servers} (start it as /work/shared/SERVICES.md says): ${(error as Error).message}`);
    }
    admin = { nc, jsm: await jetstreamManager(nc) };
  }
  return admin.jsm;
}

const names = (): { topic: string; group: string } => {
  const suffix = randomUUID().slice(0, 8);
  return { topic: `nats-test.${suffix}`, group: `group.${suffix}` };
};

after(async () => {
  await Promise.allSettled(opened.map((t) => t.close()));
  const jsm = await manager();
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(streamPrefix)) await jsm.streams.delete(name);
  }
  await admin?.nc.close();
});

describeTransportConformance({
  name: 'nats',
  connect: () => open(),
  ackWaitMs: 1_000,
  publishRaw: async (t, topic, raw) => {
    assert.ok(t instanceof NatsTransport);
    await t.publishRaw(topic, raw);
  },
  readDeadLetters: (t, topic, group) => readNatsDeadLetters(t, topic, group),
});

describe('NATS transport', () => {
  it('fails naming NATS when the server cannot be reached', async () => {
    await assert.rejects(connectNatsTransport({ servers: '127.0.0.1:1' }), /NATS: cannot connect to 127\.0\.0\.1:1/);
  });

  it('declares a file-backed stream with the dedup window, and sets Nats-Msg-Id to the envelope id', async () => {
    const t = await open();
    const { topic } = names();
    const sent = testEnvelope('k', 'stored');
    await t.publish(topic, sent);
    const jsm = await manager();
    const info = await jsm.streams.info(t.streamOf(topic));
    assert.equal(info.config.name, `${streamPrefix}nats-test_${topic.split('.')[1]}`);
    assert.deepEqual(info.config.subjects, [`${subjectPrefix}${topic}`]);
    assert.equal(info.config.storage, StorageType.File);
    assert.equal(info.config.duplicate_window, nanos(120_000));
    const stored = await jsm.streams.getMessage(t.streamOf(topic), { seq: 1 });
    assert.equal(stored?.header.get('Nats-Msg-Id'), sent.id);
    assert.deepEqual(stored?.json(), sent);
  });

  it('uses a configured dedup window', async () => {
    const t = await open({ duplicateWindowMs: 5_000 });
    const { topic } = names();
    await t.publish(topic, testEnvelope('k', 1));
    const info = await (await manager()).streams.info(t.streamOf(topic));
    assert.equal(info.config.duplicate_window, nanos(5_000));
  });

  it('declares a durable pull consumer per group with explicit acks, ack wait, max deliver, deliver all', async () => {
    const t = await open();
    const { topic, group } = names();
    const sub = await t.subscribe(topic, group, (d) => d.ack(), { ackWaitMs: 1_500, maxDeliveries: 4 });
    await sub.stop();
    const jsm = await manager();
    const { config } = await jsm.consumers.info(t.streamOf(topic), groupConsumerName(group));
    assert.equal(config.durable_name, groupConsumerName(group));
    assert.equal(config.filter_subject, `${subjectPrefix}${topic}`);
    assert.equal(config.ack_policy, AckPolicy.Explicit);
    assert.equal(config.ack_wait, nanos(1_500));
    assert.equal(config.max_deliver, 4);
    assert.equal(config.deliver_policy, DeliverPolicy.All);
    assert.equal(config.deliver_subject, undefined, 'a pull consumer');
    // Subscribing again with other limits updates the consumer in place.
    await (await t.subscribe(topic, group, (d) => d.ack(), { ackWaitMs: 2_000, maxDeliveries: 10 })).stop();
    const updated = await jsm.consumers.info(t.streamOf(topic), groupConsumerName(group));
    assert.equal(updated.config.ack_wait, nanos(2_000));
    assert.equal(updated.config.max_deliver, 10);
  });

  it('defaults to max deliver 10 and ack wait 30 s', async () => {
    const t = await open();
    const { topic, group } = names();
    await (await t.subscribe(topic, group, (d) => d.ack())).stop();
    const { config } = await (await manager()).consumers.info(t.streamOf(topic), groupConsumerName(group));
    assert.equal(config.max_deliver, 10);
    assert.equal(config.ack_wait, nanos(30_000));
  });

  it('naks a delivery whose handler threw, and keeps consuming', async () => {
    const errors: unknown[] = [];
    const t = await open({ onError: (error) => errors.push(error) });
    const { topic, group } = names();
    const log = new DeliveryLog(async (d) => {
      if (d.envelope?.payload === 'flaky' && d.deliveryCount === 1) throw new Error('boom');
      await d.ack();
    });
    const sub = await t.subscribe(topic, group, log.handler, { ackWaitMs: 30_000 });
    const flaky = testEnvelope('k', 'flaky');
    const next = testEnvelope('k', 'next');
    await t.publish(topic, flaky);
    await t.publish(topic, next);
    // Redelivered at once by the nak, well before the 30 s ack wait.
    await log.waitFor(3, 10_000);
    assert.deepEqual(
      log.deliveries.map((d) => [d.envelope?.payload, d.deliveryCount]),
      [
        ['flaky', 1],
        ['flaky', 2],
        ['next', 1],
      ],
    );
    assert.match(String(errors[0]), /boom/);
    await sub.stop();
  });

  it('hands at most `concurrency` deliveries to the handler at once', async () => {
    const t = await open();
    const { topic, group } = names();
    let running = 0;
    let peak = 0;
    const log = new DeliveryLog(async (d) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(100);
      running--;
      await d.ack();
    });
    for (let i = 0; i < 9; i++) await t.publish(topic, testEnvelope(`k${i}`, i));
    const sub = await t.subscribe(topic, group, log.handler, { concurrency: 3 });
    await log.waitFor(9);
    await sub.stop();
    assert.equal(peak, 3);
  });

  it('gives NATS details on the delivery', async () => {
    const t = await open();
    const { topic, group } = names();
    const log = new DeliveryLog();
    const sub = await t.subscribe(topic, group, log.handler);
    await t.publish(topic, testEnvelope('k', 1));
    const [d] = await log.waitFor(1);
    assert.ok(d instanceof NatsDelivery);
    assert.equal(d.stream, t.streamOf(topic));
    assert.equal(d.streamSequence, 1);
    assert.equal(d.settled, true);
    await sub.stop();
  });

  it('keeps a dead letter with its reason in headers, a multi-line error intact', async () => {
    const t = await open();
    const { topic, group } = names();
    const error = 'Error: boom\n    at handler (x.ts:1:1)\r\n100% broken ';
    const log = new DeliveryLog(async (d) => {
      await t.deadLetter(topic, group, d, { error, deliveries: d.deliveryCount, consumerGroup: group });
      await t.deadLetter(topic, group, d, { error, deliveries: d.deliveryCount, consumerGroup: group }); // a retried call
      await d.term();
    });
    const sub = await t.subscribe(topic, group, log.handler);
    const sent = testEnvelope('k', 'dead');
    await t.publish(topic, sent);
    await log.waitFor(1);
    await sub.stop();
    const letters = await readNatsDeadLetters(t, topic, group);
    assert.equal(letters.length, 1, 'a retried deadLetter of the same delivery is stored once');
    const [letter] = letters;
    assert.equal(letter!.error, error);
    assert.equal(letter!.deliveries, 1);
    assert.equal(letter!.consumerGroup, group);
    assert.equal(letter!.topic, topic);
    assert.deepEqual(JSON.parse(letter!.raw), sent);
    const stored = await (await manager()).streams.getMessage(`${streamPrefix}DLQ`, { seq: letter!.sequence });
    assert.equal(stored?.subject, `${subjectPrefix}dlq.${groupConsumerName(group)}.${topic}`);
    assert.equal(stored?.header.get(DeadLetterHeaders.deliveries), '1');
    assert.equal(stored?.header.get(DeadLetterHeaders.consumerGroup), group);
    assert.deepEqual(await readNatsDeadLetters(t, topic, 'other-group'), []);
  });

  it('rejects topics that are not literal subjects or fall under the dead-letter subjects', async () => {
    const t = await open();
    const envelope = testEnvelope('k', 1);
    for (const topic of ['', 'a..b', 'a.*', 'a.>', 'has space', '.a', 'dlq.x']) {
      await assert.rejects(t.publish(topic, envelope), TypeError, topic);
    }
  });

  it('refuses to work after close', async () => {
    const t = await open();
    await t.close();
    await assert.rejects(t.publish('x', testEnvelope('k', 1)), /closed/);
    await t.close(); // idempotent
  });
});
