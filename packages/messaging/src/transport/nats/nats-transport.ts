/**
 * The NATS JetStream transport: one file-backed stream per topic with
 * `Nats-Msg-Id` deduplication, one durable pull consumer per (topic, group),
 * and a dead-letter stream.
 */
import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../../envelope.js';
import { encodeEnvelope } from '../../envelope-codec.js';
import type { DeadLetterReason, Delivery, DeliveryHandler, SubscribeOptions, Subscription, Transport, TransportCapabilities } from '../transport.js';
import { fetchDeadLetters, publishDeadLetter, type NatsDeadLetter } from './dead-letters.js';
import { assertValidTopic, deadLetterStreamName, groupConsumerName, topicStreamName } from './nats-names.js';
import { resolveNatsOptions, type NatsTransportOptions, type ResolvedNatsOptions } from './nats-options.js';
import { NatsSubscription } from './nats-subscription.js';
import { ensureConsumer, ensureStream } from './stream-setup.js';

const encoder = new TextEncoder();

/**
 * The `Transport` over NATS JetStream. Create it with {@link connectNatsTransport}.
 *
 * ```ts
 * const transport = await connectNatsTransport({ servers: '127.0.0.1:4222' });
 * await transport.subscribe('orders.confirmed', 'billing', async (d) => d.ack());
 * await transport.publish('orders.confirmed', envelope);
 * await transport.close();
 * ```
 */
export class NatsTransport implements Transport {
  private nextFlush: Promise<void> | undefined;
  readonly name = 'nats';
  readonly capabilities: TransportCapabilities = Object.freeze({ dedup: true });
  private readonly streams = new Map<string, Promise<boolean>>();
  private deadLetterStream: Promise<boolean> | undefined;
  private readonly subscriptions = new Set<NatsSubscription>();
  private closing: Promise<void> | undefined;

  /** @internal Use {@link connectNatsTransport}. */
  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly options: ResolvedNatsOptions,
  ) {}

  /** The subject `topic` is published on. */
  subjectOf(topic: string): string {
    assertValidTopic(topic);
    const subject = `${this.options.subjectPrefix}${topic}`;
    if (subject.startsWith(this.options.deadLetterSubjectPrefix)) {
      throw new TypeError(`topic ${JSON.stringify(topic)} falls under the dead-letter subjects (${this.options.deadLetterSubjectPrefix}>)`);
    }
    return subject;
  }

  /** The stream that holds `topic`. */
  streamOf(topic: string): string {
    return topicStreamName(topic, this.options.streamPrefix);
  }

  /** The subject dead letters of (topic, group) are published on. */
  deadLetterSubjectOf(topic: string, group: string): string {
    assertValidTopic(topic);
    return `${this.options.deadLetterSubjectPrefix}${groupConsumerName(group)}.${topic}`;
  }

  async publish(topic: string, envelope: Envelope): Promise<void> {
    await this.publishBytes(topic, encoder.encode(encodeEnvelope(envelope)), envelope.id);
  }

  /**
   * Publishes bytes as they are, not checked to be an envelope: for tools and
   * tests. With `msgID`, deduplicated like `publish`.
   */
  async publishRaw(topic: string, data: string | Uint8Array, msgID?: string): Promise<void> {
    await this.publishBytes(topic, typeof data === 'string' ? encoder.encode(data) : data, msgID);
  }

  async subscribe(topic: string, group: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.assertOpen();
    const concurrency = options.concurrency ?? 1;
    const maxDeliveries = options.maxDeliveries ?? 10;
    const ackWaitMs = options.ackWaitMs ?? 30_000;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be an integer >= 1 (got ${concurrency})`);
    if (!Number.isInteger(maxDeliveries) || maxDeliveries < 1) throw new RangeError(`maxDeliveries must be an integer >= 1 (got ${maxDeliveries})`);
    if (!(ackWaitMs >= 1)) throw new RangeError(`ackWaitMs must be >= 1 (got ${ackWaitMs})`);
    const spec = { stream: this.streamOf(topic), name: groupConsumerName(group), filterSubject: this.subjectOf(topic), ackWaitMs, maxDeliveries };
    const openConsumer = async (): Promise<Consumer> => {
      await this.ensureTopicStream(topic);
      await ensureConsumer(this.jsm, spec);
      return this.js.consumers.get(spec.stream, spec.name);
    };
    const consumer = await openConsumer();
    this.assertOpen();
    const subscription = new NatsSubscription(
      {
        topic,
        group,
        handler,
        concurrency,
        pullExpiresMs: this.options.pullExpiresMs,
        openConsumer: async () => {
          this.streams.delete(topic); // re-check: the stream may be what went missing
          return openConsumer();
        },
        confirm: () => this.confirm(),
        isClosed: () => this.nc.isClosed(),
        onError: this.options.onError,
      },
      consumer,
    );
    this.subscriptions.add(subscription);
    return {
      stop: async () => {
        await subscription.stop();
        this.subscriptions.delete(subscription);
      },
    };
  }

  async deadLetter(topic: string, group: string, delivery: Delivery, reason: DeadLetterReason): Promise<void> {
    this.assertOpen();
    const subject = this.deadLetterSubjectOf(topic, group);
    await this.ensureDeadLetterStream();
    await publishDeadLetter(this.js, { subject, topic, group }, delivery, reason, this.options.requestTimeoutMs);
  }

  /** Dead letters of (topic, group), oldest first. Prefer the {@link readNatsDeadLetters} helper. */
  async readDeadLetters(topic: string, group: string, limit = 1_000): Promise<NatsDeadLetter[]> {
    this.assertOpen();
    const subject = this.deadLetterSubjectOf(topic, group);
    await this.ensureDeadLetterStream();
    return fetchDeadLetters(this.jsm, this.js, deadLetterStreamName(this.options.streamPrefix), subject, limit);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.allSettled([...this.subscriptions].map((s) => s.stop()));
    this.subscriptions.clear();
    if (this.nc.isClosed()) return;
    // Drain flushes what was sent (acks included); a connection that cannot drain (broker down) is closed.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, this.options.requestTimeoutMs, 'timeout')));
    const drained = await Promise.race([this.nc.drain().catch(() => 'failed' as const), timedOut]);
    clearTimeout(timer);
    if ((drained === 'failed' || drained === 'timeout') && !this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }

  private async publishBytes(topic: string, data: Uint8Array, msgID: string | undefined): Promise<void> {
    this.assertOpen();
    const subject = this.subjectOf(topic);
    await this.ensureTopicStream(topic);
    const options = { timeout: this.options.requestTimeoutMs, ...(msgID === undefined ? {} : { msgID }) };
    try {
      await this.js.publish(subject, data, options); // a duplicate ack is a success too
    } catch (error) {
      // The stream may have been removed since it was cached: declare it again, and retry once if it was missing.
      this.streams.delete(topic);
      const created = await this.ensureTopicStream(topic).catch(() => false);
      if (!created) throw new Error(`NATS: publish to ${subject} failed: ${(error as Error).message}`, { cause: error });
      await this.js.publish(subject, data, options);
    }
  }

  /** Declares the stream of `topic` once per transport; resolves `true` if this call created it. */
  private ensureTopicStream(topic: string): Promise<boolean> {
    let ensured = this.streams.get(topic);
    if (ensured === undefined) {
      const { streamPrefix, duplicateWindowMs, maxAgeMs, replicas } = this.options;
      ensured = ensureStream(this.jsm, { name: topicStreamName(topic, streamPrefix), subjects: [this.subjectOf(topic)], duplicateWindowMs, maxAgeMs, replicas });
      this.streams.set(topic, ensured);
      void ensured.catch(() => {
        if (this.streams.get(topic) === ensured) this.streams.delete(topic);
      });
    }
    return ensured;
  }

  private ensureDeadLetterStream(): Promise<boolean> {
    if (this.deadLetterStream === undefined) {
      const { streamPrefix, deadLetterSubjectPrefix, duplicateWindowMs, replicas } = this.options;
      const ensured = ensureStream(this.jsm, { name: deadLetterStreamName(streamPrefix), subjects: [`${deadLetterSubjectPrefix}>`], duplicateWindowMs, maxAgeMs: 0, replicas });
      this.deadLetterStream = ensured;
      void ensured.catch(() => {
        if (this.deadLetterStream === ensured) this.deadLetterStream = undefined;
      });
    }
    return this.deadLetterStream;
  }

  /**
   * Resolves once the server has read everything sent before the call (or
   * rejects after the request timeout). Calls made in the same turn of the
   * event loop share one flush: a batch of acks costs one PING, not one each.
   */
  private confirm(): Promise<void> {
    this.nextFlush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.nextFlush = undefined;
        const timer = setTimeout(() => reject(new Error(`NATS: no answer from the server within ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
        this.nc.flush().then(
          () => {
            clearTimeout(timer);
            resolve();
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(error);
          },
        );
      });
    });
    return this.nextFlush;
  }


  private assertOpen(): void {
    if (this.closing !== undefined || this.nc.isClosed()) throw new Error('NATS transport is closed');
  }
}

/**
 * Connects to NATS, checks that JetStream is enabled, and returns the
 * transport. The client reconnects without limit; subscriptions resume
 * when the broker is back. Rejects, naming NATS, when the server cannot be
 * reached.
 *
 * ```ts
 * const transport = await connectNatsTransport({ servers: ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222'], name: 'billing' });
 * ```
 */
export async function connectNatsTransport(options: NatsTransportOptions): Promise<NatsTransport> {
  const resolved = resolveNatsOptions(options);
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...resolved.connection,
      servers: resolved.servers,
      ...(resolved.name === undefined ? {} : { name: resolved.name }),
      maxReconnectAttempts: -1,
    });
  } catch (error) {
    throw new Error(`NATS: cannot connect to ${resolved.servers.join(', ')}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: resolved.requestTimeoutMs });
    return new NatsTransport(nc, jsm, jetstream(nc, { timeout: resolved.requestTimeoutMs }), resolved);
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw new Error(`NATS: JetStream is not available on ${resolved.servers.join(', ')}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Reads the dead letters `deadLetter` set aside for (topic, group), oldest
 * first. Accepts any `Transport` so it fits the conformance suite's
 * `readDeadLetters`; throws unless it is a {@link NatsTransport}.
 *
 * ```ts
 * for (const letter of await readNatsDeadLetters(transport, 'orders.confirmed', 'billing')) {
 *   console.log(letter.error, letter.deliveries, letter.raw);
 * }
 * ```
 */
export async function readNatsDeadLetters(transport: Transport, topic: string, group: string, limit?: number): Promise<NatsDeadLetter[]> {
  if (!(transport instanceof NatsTransport)) throw new TypeError(`readNatsDeadLetters needs a NATS transport, got ${transport.name}`);
  return transport.readDeadLetters(topic, group, limit);
}
