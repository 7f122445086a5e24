/**
 * The conformance suite every transport passes, against a real broker.
 * Call it from a transport's test file:
 *
 * ```ts
 * describeTransportConformance({ name: 'nats', connect: () => connectNatsTransport({ servers: '127.0.0.1:4222' }) });
 * ```
 *
 * Each test uses its own fresh topic and group, so the suite can share a
 * broker with other tests. Waits are bounded; what is asserted is behaviour
 * (what was delivered, how often, in what order), never speed — except that
 * a nak'd message must not come back before its delay.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { uuidv7, type Envelope } from '../envelope.js';
import type { Delivery, SubscribeOptions, Subscription, Transport } from '../transport/transport.js';

export interface ConformanceOptions {
  name: string;
  /** A new, connected transport instance (a test may open several, as separate processes would). */
  connect: () => Promise<Transport>;
  /** The ack wait the suite uses; the broker must honour values this small. Default 1 000 ms. */
  ackWaitMs?: number;
  /** Publishes bytes that are not an envelope, to check they are delivered with a parse error. */
  publishRaw?: (transport: Transport, topic: string, raw: string) => Promise<void>;
  /** Reads what `deadLetter` set aside for (topic, group), to check it holds the message and reason. */
  readDeadLetters?: (transport: Transport, topic: string, group: string) => Promise<{ raw: string; error: string; deliveries: number }[]>;
}

export function testEnvelope(key: string, payload: unknown, type = 'TestEvent'): Envelope {
  return { id: uuidv7(), type, version: 1, key, occurredAt: new Date().toISOString(), headers: { 'correlation-id': randomUUID() }, payload };
}

/** Records deliveries and lets a test wait for a number of them. */
export class DeliveryLog {
  readonly deliveries: Delivery[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(private readonly settle: (d: Delivery) => Promise<void> = (d) => d.ack()) {}

  readonly handler = async (delivery: Delivery): Promise<void> => {
    this.deliveries.push(delivery);
    this.waiters = this.waiters.filter((w) => (this.deliveries.length >= w.count ? (w.resolve(), false) : true));
    await this.settle(delivery);
  };

  /** Resolves when at least `count` deliveries arrived; fails the test after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 15_000): Promise<Delivery[]> {
    if (this.deliveries.length < count) {
      const arrived = new Promise<void>((resolve) => this.waiters.push({ count, resolve }));
      const cancel = new AbortController();
      const timer = sleep(timeoutMs, 'timeout' as const, { signal: cancel.signal }).catch(() => 'cancelled' as const);
      try {
        if ((await Promise.race([arrived, timer])) === 'timeout') {
          assert.fail(`expected ${count} deliveries within ${timeoutMs} ms, got ${this.deliveries.length}`);
        }
      } finally {
        cancel.abort();
      }
    }
    return this.deliveries;
  }

  ids(): string[] {
    return this.deliveries.map((d) => d.envelope?.id ?? '(malformed)');
  }
}

export function describeTransportConformance(options: ConformanceOptions): void {
  const ackWaitMs = options.ackWaitMs ?? 1_000;
  const open: Transport[] = [];
  const connect = async (): Promise<Transport> => {
    const t = await options.connect();
    open.push(t);
    return t;
  };
  const names = (): { topic: string; group: string } => {
    const suffix = randomUUID().slice(0, 8);
    return { topic: `conformance.${suffix}`, group: `group-${suffix}` };
  };
  const subscribeOptions: SubscribeOptions = { ackWaitMs, maxDeliveries: 5 };
  /**
   * Declares a durable group without consuming, as a deployment does before
   * traffic: on some brokers (RabbitMQ) a message published before its
   * group's queue exists reaches nobody.
   */
  const declare = async (t: Transport, topic: string, group: string): Promise<void> => {
    const s = await t.subscribe(topic, group, (d) => d.nak(), subscribeOptions);
    await s.stop();
  };

  describe(`transport conformance: ${options.name}`, () => {
    after(async () => {
      await Promise.allSettled(open.map((t) => t.close()));
    });

    it('delivers a published envelope intact, first delivery counted 1', async () => {
      const t = await connect();
      const { topic, group } = names();
      const log = new DeliveryLog();
      const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
      const sent = testEnvelope('k1', { n: 1, nested: { ok: true } });
      await t.publish(topic, sent);
      const [d] = await log.waitFor(1);
      assert.deepEqual(d!.envelope, sent);
      assert.equal(d!.deliveryCount, 1);
      assert.equal(d!.parseError, undefined);
      await sub.stop();
    });

    it('keeps messages published before the group first subscribed', async () => {
      const t = await connect();
      const { topic, group } = names();
      await declare(t, topic, group);
      const sent = [testEnvelope('k', 1), testEnvelope('k', 2)];
      for (const e of sent) await t.publish(topic, e);
      const log = new DeliveryLog();
      const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
      await log.waitFor(2);
      assert.deepEqual(log.ids(), sent.map((e) => e.id));
      await sub.stop();
    });

    it('does not redeliver an acked message', async () => {
      const t = await connect();
      const { topic, group } = names();
      const log = new DeliveryLog();
      const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
      await t.publish(topic, testEnvelope('k', 'once'));
      await log.waitFor(1);
      await sleep(ackWaitMs * 2.5);
      assert.equal(log.deliveries.length, 1);
      await sub.stop();
    });

    it('redelivers a nak\'d message after its delay, counting the delivery', async () => {
      const t = await connect();
      const { topic, group } = names();
      const delayMs = 300;
      const at: number[] = [];
      const log = new DeliveryLog(async (d) => {
        at.push(performance.now());
        await (d.deliveryCount === 1 ? d.nak(delayMs) : d.ack());
      });
      const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
      await t.publish(topic, testEnvelope('k', 'again'));
      await log.waitFor(2);
      assert.deepEqual(log.deliveries.map((d) => d.deliveryCount), [1, 2]);
      assert.equal(log.deliveries[0]!.envelope!.id, log.deliveries[1]!.envelope!.id);
      assert.ok(at[1]! - at[0]! >= delayMs - 20, `redelivered ${Math.round(at[1]! - at[0]!)} ms after a nak of ${delayMs} ms`);
      await sub.stop();
    });

    it('never redelivers a terminated message', async () => {
      const t = await connect();
      const { topic, group } = names();
      const log = new DeliveryLog((d) => d.term());
      const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
      await t.publish(topic, testEnvelope('k', 'poison'));
      await log.waitFor(1);
      await sleep(ackWaitMs * 2.5);
      assert.equal(log.deliveries.length, 1);
      await sub.stop();
    });

    it('redelivers, to another consumer, a message whose consumer died before settling it', async () => {
      const crashed = await connect();
      const { topic, group } = names();
      const seen = new DeliveryLog(async () => {
        /* never settles: the process "dies" holding it */
      });
      await crashed.subscribe(topic, group, seen.handler, subscribeOptions);
      const sent = testEnvelope('k', 'survives');
      await crashed.publish(topic, sent);
      await seen.waitFor(1);
      await crashed.close();
      const survivor = await connect();
      const log = new DeliveryLog();
      const sub = await survivor.subscribe(topic, group, log.handler, subscribeOptions);
      const [d] = await log.waitFor(1, ackWaitMs * 10 + 15_000);
      assert.equal(d!.envelope!.id, sent.id);
      assert.ok(d!.deliveryCount >= 2, `a redelivery is counted (got ${d!.deliveryCount})`);
      await sub.stop();
    });

    it('stops delivering a message after maxDeliveries', async () => {
      const t = await connect();
      const { topic, group } = names();
      const log = new DeliveryLog((d) => d.nak());
      const sub = await t.subscribe(topic, group, log.handler, { ackWaitMs, maxDeliveries: 3 });
      await t.publish(topic, testEnvelope('k', 'hopeless'));
      await log.waitFor(3);
      await sleep(ackWaitMs * 2.5);
      assert.deepEqual(log.deliveries.map((d) => d.deliveryCount), [1, 2, 3]);
      await sub.stop();
    });

    it('delivers the messages of one key in the order they were published', async () => {
      const t = await connect();
      const { topic, group } = names();
      await declare(t, topic, group);
      const sent: Envelope[] = [];
      for (let i = 0; i < 30; i++) sent.push(testEnvelope(`key-${i % 3}`, i));
      for (const e of sent) await t.publish(topic, e);
      const log = new DeliveryLog();
      const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
      await log.waitFor(30);
      for (const key of ['key-0', 'key-1', 'key-2']) {
        const got = log.deliveries.filter((d) => d.envelope!.key === key).map((d) => d.envelope!.payload);
        const want = sent.filter((e) => e.key === key).map((e) => e.payload);
        assert.deepEqual(got, want, `order of ${key}`);
      }
      await sub.stop();
    });

    it('shares a group among competing consumers, each message handled once', async () => {
      const a = await connect();
      const b = await connect();
      const { topic, group } = names();
      const logA = new DeliveryLog();
      const logB = new DeliveryLog();
      const subA = await a.subscribe(topic, group, logA.handler, subscribeOptions);
      const subB = await b.subscribe(topic, group, logB.handler, subscribeOptions);
      const sent = Array.from({ length: 40 }, (_, i) => testEnvelope(`k${i}`, i));
      for (const e of sent) await a.publish(topic, e);
      const deadline = Date.now() + 15_000;
      while (logA.deliveries.length + logB.deliveries.length < sent.length && Date.now() < deadline) await sleep(20);
      await sleep(ackWaitMs * 1.5);
      const ids = [...logA.ids(), ...logB.ids()];
      assert.equal(ids.length, sent.length, 'no message lost, none delivered twice');
      assert.deepEqual(new Set(ids), new Set(sent.map((e) => e.id)));
      await Promise.all([subA.stop(), subB.stop()]);
    });

    it('delivers to every group, each on its own', async () => {
      const t = await connect();
      const { topic, group } = names();
      const one = new DeliveryLog();
      const two = new DeliveryLog();
      const s1 = await t.subscribe(topic, `${group}-one`, one.handler, subscribeOptions);
      const s2 = await t.subscribe(topic, `${group}-two`, two.handler, subscribeOptions);
      const sent = testEnvelope('k', 'fan-out');
      await t.publish(topic, sent);
      await one.waitFor(1);
      await two.waitFor(1);
      assert.deepEqual([one.ids(), two.ids()], [[sent.id], [sent.id]]);
      await Promise.all([s1.stop(), s2.stop()]);
    });

    it('stores a republished envelope id once, where the broker deduplicates', async (ctx) => {
      const t = await connect();
      if (!t.capabilities.dedup) {
        ctx.diagnostic(`${t.name} does not deduplicate: exactly-once effect rests on the consumer's inbox`);
        return;
      }
      const { topic, group } = names();
      await declare(t, topic, group);
      const sent = testEnvelope('k', 'twice');
      await t.publish(topic, sent);
      await t.publish(topic, sent);
      const marker = testEnvelope('k', 'marker');
      await t.publish(topic, marker);
      const log = new DeliveryLog();
      const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
      await log.waitFor(2);
      await sleep(300);
      assert.deepEqual(log.ids(), [sent.id, marker.id]);
      await sub.stop();
    });

    it('stops a subscription only after its in-flight handler settled', async () => {
      const t = await connect();
      const { topic, group } = names();
      let finished = false;
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const sub = await t.subscribe(
        topic,
        group,
        async (d) => {
          started();
          await sleep(200);
          finished = true;
          await d.ack();
        },
        subscribeOptions,
      );
      await t.publish(topic, testEnvelope('k', 'slow'));
      await running;
      await sub.stop();
      assert.equal(finished, true);
    });

    if (options.publishRaw !== undefined) {
      const publishRaw = options.publishRaw;
      it('delivers bytes that are not an envelope with a parse error, not a crash', async () => {
        const t = await connect();
        const { topic, group } = names();
        const log = new DeliveryLog((d) => d.term());
        const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
        await publishRaw(t, topic, '{"not":"an envelope"');
        const good = testEnvelope('k', 'after');
        await t.publish(topic, good);
        await log.waitFor(2);
        const [bad, ok] = log.deliveries;
        assert.equal(bad!.envelope, undefined);
        assert.match(String(bad!.parseError?.message), /malformed envelope/);
        assert.equal(bad!.raw, '{"not":"an envelope"');
        assert.equal(ok!.envelope!.id, good.id);
        await sub.stop();
      });
    }

    if (options.readDeadLetters !== undefined) {
      const read = options.readDeadLetters;
      it('sets a dead letter aside with its reason', async () => {
        const t = await connect();
        const { topic, group } = names();
        const log = new DeliveryLog(async (d) => {
          await t.deadLetter(topic, group, d, { error: 'handler failed: boom', deliveries: d.deliveryCount, consumerGroup: group });
          await d.term();
        });
        const sub = await t.subscribe(topic, group, log.handler, subscribeOptions);
        const sent = testEnvelope('k', 'dead');
        await t.publish(topic, sent);
        await log.waitFor(1);
        let letters: Awaited<ReturnType<typeof read>> = [];
        const deadline = Date.now() + 10_000;
        while (letters.length === 0 && Date.now() < deadline) {
          letters = await read(t, topic, group);
          if (letters.length === 0) await sleep(50);
        }
        assert.equal(letters.length, 1);
        assert.equal((JSON.parse(letters[0]!.raw) as { id: string }).id, sent.id);
        assert.equal(letters[0]!.error, 'handler failed: boom');
        assert.equal(letters[0]!.deliveries, 1);
        await sub.stop();
      });
    }
  });
}

export type { Subscription };
