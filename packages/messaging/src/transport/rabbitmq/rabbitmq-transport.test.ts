/**
 * The RabbitMQ transport against a real RabbitMQ (127.0.0.1:5672, or
 * BULWARK_TEST_RABBITMQ_URL). Every test uses its own exchange-scoped names; the
 * queues and exchanges the transports declared are deleted afterwards.
 * When RabbitMQ cannot be reached these tests fail, naming it.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as amqpConnect, type ChannelModel } from 'amqplib';
import { describeTransportConformance, DeliveryLog, testEnvelope } from '../../testing/index.js';
import { connectRabbitTransport, publishRabbitRaw, readRabbitDeadLetters, type RabbitTransport, type RabbitTransportOptions } from './rabbitmq-transport.js';
import { TcpProxy } from './testing/tcp-proxy.js';
import { deadLetterExchangeName, groupQueueNames } from './topology.js';

const url = process.env.BULWARK_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = `bulwark.test.${randomUUID().slice(0, 8)}`;
const opened: RabbitTransport[] = [];
const errors: Error[] = [];

async function connect(options: Partial<RabbitTransportOptions> = {}): Promise<RabbitTransport> {
  const transport = await connectRabbitTransport({ url, exchange, onError: (e) => errors.push(e), connectionName: 'bulwark-test', ...options });
  opened.push(transport);
  return transport;
}

async function raw(): Promise<ChannelModel> {
  try {
    return await amqpConnect(url);
  } catch (error) {
    throw new Error(`RabbitMQ is not reachable at ${url.replace(/:[^:@/]*@/, ':***@')}: ${(error as Error).message}`, { cause: error });
  }
}

function names(): { topic: string; group: string } {
  const suffix = randomUUID().slice(0, 8);
  return { topic: `rabbit.${suffix}`, group: `group-${suffix}` };
}

after(async () => {
  await Promise.allSettled(opened.map((t) => t.close()));
  let model: ChannelModel;
  try {
    model = await raw();
  } catch {
    return; // nothing was declared
  }
  const queues = new Set(opened.flatMap((t) => t.declared.queues));
  const exchanges = new Set(opened.flatMap((t) => t.declared.exchanges).concat(exchange, deadLetterExchangeName(exchange)));
  for (const queue of queues) {
    const channel = await model.createChannel();
    await channel.deleteQueue(queue).catch(() => undefined);
    await channel.close().catch(() => undefined);
  }
  for (const name of exchanges) {
    const channel = await model.createChannel();
    await channel.deleteExchange(name).catch(() => undefined);
    await channel.close().catch(() => undefined);
  }
  await model.close();
});

describe('RabbitMQ', () => {
  it(`is reachable at ${url.replace(/:[^:@/]*@/, ':***@')}`, async () => {
    const model = await raw();
    await model.close();
  });
});

describeTransportConformance({
  name: 'rabbitmq',
  connect: () => connect(),
  ackWaitMs: 1_000,
  publishRaw: publishRabbitRaw,
  readDeadLetters: readRabbitDeadLetters,
});

describe('rabbitmq transport', () => {
  it('declares a quorum queue with an explicit x-delivery-limit and a dead-letter exchange', async () => {
    const t = await connect();
    const { topic, group } = names();
    await t.declareGroup(topic, group, { maxDeliveries: 4 });
    const { queue, deadLetterQueue } = groupQueueNames(topic, group);
    assert.deepEqual(new Set(t.declared.queues), new Set([queue, deadLetterQueue]));
    const model = await raw();
    try {
      // A declaration with the same arguments is accepted: the queue is exactly this.
      const same = {
        'x-queue-type': 'quorum',
        'x-delivery-limit': 4,
        'x-dead-letter-exchange': deadLetterExchangeName(exchange),
        'x-dead-letter-routing-key': deadLetterQueue,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      };
      const ok = await model.createChannel();
      await ok.assertQueue(queue, { durable: true, arguments: same });
      await ok.close();
      // Any other type or limit is refused by RabbitMQ.
      for (const [arg, value] of [['x-queue-type', 'classic'], ['x-delivery-limit', 5]] as const) {
        const channel = await model.createChannel();
        channel.on('error', () => undefined);
        await assert.rejects(channel.assertQueue(queue, { durable: true, arguments: { ...same, [arg]: value } }), new RegExp(`PRECONDITION_FAILED.*${arg}`));
      }
      // The same group with another maxDeliveries is refused with an explanation.
      await assert.rejects(t.subscribe(topic, group, (d) => d.ack(), { maxDeliveries: 7 }), /other arguments, e\.g\. another maxDeliveries/);
    } finally {
      await model.close();
    }
  });

  it('sends a delayed nak back to its own group only', async () => {
    const t = await connect();
    const { topic, group } = names();
    const naking = new DeliveryLog(async (d) => (d.deliveryCount === 1 ? d.nak(400) : d.ack()));
    const other = new DeliveryLog();
    const a = await t.subscribe(topic, `${group}-a`, naking.handler);
    const b = await t.subscribe(topic, `${group}-b`, other.handler);
    const sent = testEnvelope('k', 'delayed');
    await t.publish(topic, sent);
    await naking.waitFor(2);
    await sleep(600);
    assert.deepEqual(naking.deliveries.map((d) => [d.envelope?.id, d.deliveryCount]), [[sent.id, 1], [sent.id, 2]]);
    assert.deepEqual(other.deliveries.map((d) => [d.envelope?.id, d.deliveryCount]), [[sent.id, 1]]);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('keeps counting deliveries across delayed naks and requeues, and stops at maxDeliveries', async () => {
    const t = await connect();
    const { topic, group } = names();
    const log = new DeliveryLog((d) => (d.deliveryCount % 2 === 1 ? d.nak(50) : d.nak()));
    const sub = await t.subscribe(topic, group, log.handler, { maxDeliveries: 5 });
    const sent = testEnvelope('k', 'mixed');
    await t.publish(topic, sent);
    await log.waitFor(5);
    await sleep(500);
    assert.deepEqual(log.deliveries.map((d) => d.deliveryCount), [1, 2, 3, 4, 5]);
    const letters = await readRabbitDeadLetters(t, topic, group);
    assert.equal(letters.length, 1);
    assert.equal((JSON.parse(letters[0]!.raw) as { id: string }).id, sent.id);
    assert.equal(letters[0]!.deliveries, 5);
    assert.match(letters[0]!.error, /maxDeliveries \(5\)/);
    await sub.stop();
  });

  it('dead-letters through x-delivery-limit a message that keeps being requeued', async () => {
    const t = await connect();
    const { topic, group } = names();
    await t.declareGroup(topic, group, { maxDeliveries: 2 });
    const sent = testEnvelope('k', 'requeued');
    await t.publish(topic, sent);
    // A consumer that is not this transport requeues it forever: only the broker's limit stops it.
    const model = await raw();
    let deliveries = 0;
    try {
      const channel = await model.createChannel();
      await channel.prefetch(1);
      await channel.consume(groupQueueNames(topic, group).queue, (m) => {
        if (m === null) return;
        deliveries++;
        channel.nack(m, false, true);
      });
      let letters = await readRabbitDeadLetters(t, topic, group);
      for (let i = 0; i < 100 && letters.length === 0; i++) {
        await sleep(50);
        letters = await readRabbitDeadLetters(t, topic, group);
      }
      assert.equal(deliveries, 3, 'x-delivery-limit 2: two redeliveries, then dead-lettered');
      assert.equal(letters.length, 1);
      assert.equal(letters[0]!.messageId, sent.id);
      assert.match(letters[0]!.error, /x-delivery-limit/);
      assert.equal(letters[0]!.deliveries, 3);
    } finally {
      await model.close();
    }
  });

  it('terms into the dead-letter queue once, with the delivery count', async () => {
    const t = await connect();
    const { topic, group } = names();
    const log = new DeliveryLog((d) => (d.deliveryCount < 2 ? d.nak() : d.term()));
    const sub = await t.subscribe(topic, group, log.handler);
    await t.publish(topic, testEnvelope('k', 'terminated'));
    await log.waitFor(2);
    await sleep(300);
    const letters = await readRabbitDeadLetters(t, topic, group);
    assert.equal(letters.length, 1);
    assert.equal(letters[0]!.deliveries, 2);
    assert.match(letters[0]!.error, /terminated by the consumer/);
    // Reading is not destructive.
    assert.equal((await readRabbitDeadLetters(t, topic, group)).length, 1);
    await sub.stop();
  });

  it('naks a delivery whose handler threw, and keeps consuming', async () => {
    const t = await connect();
    const { topic, group } = names();
    const seen: number[] = [];
    const sub = await t.subscribe(topic, group, async (d) => {
      seen.push(d.envelope!.payload as number);
      if (d.deliveryCount === 1 && d.envelope!.payload === 1) throw new Error('boom');
      await d.ack();
    });
    await t.publish(topic, testEnvelope('k', 1));
    await t.publish(topic, testEnvelope('k', 2));
    const deadline = Date.now() + 10_000;
    while (seen.length < 3 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(seen, [1, 1, 2]);
    assert.ok(errors.some((e) => /threw: boom/.test(e.message)));
    await sub.stop();
  });

  it('requeues after ackWaitMs a delivery whose handler returned without settling', async () => {
    const t = await connect();
    const { topic, group } = names();
    const at: number[] = [];
    const log = new DeliveryLog(async (d) => {
      at.push(performance.now());
      if (d.deliveryCount > 1) await d.ack();
    });
    const sub = await t.subscribe(topic, group, log.handler, { ackWaitMs: 500 });
    await t.publish(topic, testEnvelope('k', 'forgotten'));
    await log.waitFor(2);
    assert.deepEqual(log.deliveries.map((d) => d.deliveryCount), [1, 2]);
    assert.ok(at[1]! - at[0]! >= 480, `requeued after ${Math.round(at[1]! - at[0]!)} ms`);
    await sub.stop();
  });

  it('sets aside, without calling the handler, a delivery numbered above maxDeliveries', async () => {
    const t = await connect();
    const { topic, group } = names();
    await t.declareGroup(topic, group, { maxDeliveries: 2 });
    await t.publish(topic, testEnvelope('k', 'crashes'));
    // Two consumers that die holding it.
    for (let i = 0; i < 2; i++) {
      const crashing = await connect();
      const held = new DeliveryLog(async () => undefined);
      await crashing.subscribe(topic, group, held.handler, { maxDeliveries: 2 });
      await held.waitFor(1);
      await crashing.close();
    }
    const log = new DeliveryLog();
    const sub = await t.subscribe(topic, group, log.handler, { maxDeliveries: 2 });
    let letters = await readRabbitDeadLetters(t, topic, group);
    for (let i = 0; i < 100 && letters.length === 0; i++) {
      await sleep(50);
      letters = await readRabbitDeadLetters(t, topic, group);
    }
    assert.equal(log.deliveries.length, 0);
    assert.equal(letters.length, 1);
    assert.equal(letters[0]!.deliveries, 2);
    assert.match(letters[0]!.error, /delivered 3 times, more than maxDeliveries \(2\)/);
    await sub.stop();
  });

  it('subscribes again when RabbitMQ cancels the consumer (its queue was deleted)', async () => {
    const t = await connect({ reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    const { topic, group } = names();
    const log = new DeliveryLog();
    const sub = await t.subscribe(topic, group, log.handler);
    const model = await raw();
    try {
      const channel = await model.createChannel();
      await channel.deleteQueue(groupQueueNames(topic, group).queue);
    } finally {
      await model.close();
    }
    const sent = testEnvelope('k', 'after re-declare');
    const deadline = Date.now() + 10_000;
    // Publish until the re-declared queue is bound (until then it routes nowhere).
    while (log.deliveries.length === 0 && Date.now() < deadline) {
      await t.publish(topic, sent);
      await sleep(200);
    }
    assert.equal(log.deliveries[0]?.envelope?.id, sent.id);
    await sub.stop();
  });

  it('reconnects after losing the broker, resumes its consumers and publishes again', async () => {
    const target = new URL(url);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5672));
    const port = await proxy.start();
    const through = new URL(url);
    through.port = String(port);
    try {
      const t = await connect({ url: through.toString(), reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, operationTimeoutMs: 10_000 });
      const { topic, group } = names();
      const log = new DeliveryLog();
      const sub = await t.subscribe(topic, group, log.handler);
      await t.publish(topic, testEnvelope('k', 'before'));
      await log.waitFor(1);
      await sleep(200); // let the ack reach the broker before the cut, or 'before' comes again (rightly)

      await proxy.stop(); // the broker "goes away"
      await sleep(300);
      const pending = t.publish(topic, testEnvelope('k', 'during')); // waits for the connection
      await sleep(300);
      await proxy.start(); // and comes back

      await pending;
      await t.publish(topic, testEnvelope('k', 'after'));
      await log.waitFor(3);
      assert.deepEqual(log.deliveries.map((d) => d.envelope!.payload), ['before', 'during', 'after']);
      assert.ok(errors.some((e) => /lost the connection/.test(e.message)));
      await sub.stop();
      await t.close();
    } finally {
      await proxy.stop();
    }
  });
});
