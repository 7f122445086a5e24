/**
 * The RabbitMQ transport: a durable topic exchange, one quorum queue per
 * (topic, group) with an explicit `x-delivery-limit` and a dead-letter
 * queue, publisher confirms, manual acks, delayed naks through delay queues,
 * and a connection that comes back after a broker restart. See `topology.ts`
 * for the names and `rabbitmq-subscription.ts` for how deliveries settle.
 *
 * RabbitMQ does not deduplicate (`capabilities.dedup = false`): a message
 * published twice is delivered twice, and the consumer's inbox makes the
 * effect happen once.
 */
import { encodeEnvelope } from '../../envelope-codec.js';
import type { Envelope } from '../../envelope.js';
import type { DeadLetterReason, Delivery, DeliveryHandler, SubscribeOptions, Subscription, Transport, TransportCapabilities } from '../transport.js';
import { RabbitConnection, type ReconnectOptions } from './connection.js';
import { Declarations, type DeclaredTopology } from './declarations.js';
import { copyProperties, deadLetterHeaders, toDeadLetter, type RabbitDeadLetter } from './headers.js';
import { ConfirmPublisher } from './publisher.js';
import { RabbitDelivery } from './rabbitmq-delivery.js';
import { RabbitSubscription, type SubscriptionContext } from './rabbitmq-subscription.js';
import { DEFAULT_EXCHANGE, checkTopic, deadLetterExchangeName, declareExchanges, groupQueueNames } from './topology.js';

export interface RabbitTransportOptions {
  /** `amqp://user:password@host:5672/vhost`; `?heartbeat=10` etc. as amqplib reads them. */
  url: string;
  /** The durable topic exchange topics are published to. Default `bulwark.events`. */
  exchange?: string;
  /** How long the first connection may take. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** How long `publish`, `subscribe`, ... wait for the connection while it is being re-established. Default 30 000 ms. */
  operationTimeoutMs?: number;
  /** Backoff between reconnection attempts (and consumer restarts). */
  reconnect?: ReconnectOptions;
  /** The connection's name in RabbitMQ's tools. Default `bulwark`. */
  connectionName?: string;
  /**
   * Errors that have no caller to reject: a lost connection, a handler that
   * threw, a settle on a closed channel, a failed consumer restart. Default:
   * `process.emitWarning`.
   */
  onError?: (error: Error) => void;
}

/** Options of `declareGroup`. */
export interface DeclareGroupOptions {
  /** The queue's delivery limit; must match what the group subscribes with. Default 10. */
  maxDeliveries?: number;
}

const SUBSCRIBE_DEFAULTS: Required<SubscribeOptions> = { maxDeliveries: 10, ackWaitMs: 30_000, concurrency: 1 };

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`rabbitmq: ${name} must be an integer >= 1, got ${value}`);
  return value;
}

/**
 * A `Transport` over RabbitMQ. Create it with `connectRabbitTransport`.
 *
 * @example
 * ```ts
 * const transport = await connectRabbitTransport({ url: 'amqp://guest:guest@127.0.0.1:5672' });
 * await transport.subscribe('orders.confirmed', 'billing', async (d) => {
 *   await bill(d.envelope!);
 *   await d.ack();
 * });
 * await transport.publish('orders.confirmed', envelope);
 * ```
 */
export class RabbitTransport implements Transport {
  readonly name = 'rabbitmq';
  readonly capabilities: TransportCapabilities = { dedup: false };
  private readonly subscriptions = new Set<RabbitSubscription>();
  private readonly context: SubscriptionContext;
  private closing: Promise<void> | undefined;

  /** @internal Use `connectRabbitTransport`. */
  constructor(
    private readonly connection: RabbitConnection,
    private readonly declarations: Declarations,
    private readonly publisher: ConfirmPublisher,
    /** The topic exchange this transport publishes to. */
    readonly exchange: string,
    options: { operationTimeoutMs: number; reconnect: Required<ReconnectOptions>; onError: (error: Error) => void },
  ) {
    this.context = {
      connection,
      declarations,
      publisher,
      operationTimeoutMs: options.operationTimeoutMs,
      reconnect: options.reconnect,
      onError: options.onError,
      setAside: (topic, group, delivery, reason) => this.setAside(topic, group, delivery, reason),
      stopped: (subscription) => void this.subscriptions.delete(subscription),
    };
  }

  /** Every exchange and queue this transport declared (for tooling and test clean-up). */
  get declared(): DeclaredTopology {
    return this.declarations.declared;
  }

  /**
   * Publishes with `persistent`, `message-id` = envelope id and a JSON
   * content type to the exchange, routing key = `topic`; resolves on the
   * broker's confirm. A topic that no group has declared routes nowhere:
   * declare groups (`declareGroup` or a first `subscribe`) before publishing.
   */
  async publish(topic: string, envelope: Envelope): Promise<void> {
    this.checkOpen();
    checkTopic(topic);
    const properties = { persistent: true, messageId: envelope.id, type: envelope.type, contentType: 'application/json', contentEncoding: 'utf-8', timestamp: Math.floor(Date.now() / 1000) };
    await this.publisher.publish(this.exchange, topic, Buffer.from(encodeEnvelope(envelope), 'utf8'), properties);
  }

  /** Publishes bytes as they are (tests and tools: e.g. a body that is not an envelope). */
  async publishRaw(topic: string, body: string | Buffer): Promise<void> {
    this.checkOpen();
    checkTopic(topic);
    await this.publisher.publish(this.exchange, topic, typeof body === 'string' ? Buffer.from(body, 'utf8') : body, { persistent: true });
  }

  /**
   * Declares the group's queues without consuming, so that messages
   * published from now on wait for the group (what a deployment does before
   * traffic starts).
   */
  async declareGroup(topic: string, group: string, options: DeclareGroupOptions = {}): Promise<void> {
    this.checkOpen();
    await this.declarations.group(topic, group, positiveInteger('maxDeliveries', options.maxDeliveries ?? SUBSCRIBE_DEFAULTS.maxDeliveries));
  }

  async subscribe(topic: string, group: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.checkOpen();
    const resolved: Required<SubscribeOptions> = {
      maxDeliveries: positiveInteger('maxDeliveries', options.maxDeliveries ?? SUBSCRIBE_DEFAULTS.maxDeliveries),
      ackWaitMs: positiveInteger('ackWaitMs', options.ackWaitMs ?? SUBSCRIBE_DEFAULTS.ackWaitMs),
      concurrency: positiveInteger('concurrency', options.concurrency ?? SUBSCRIBE_DEFAULTS.concurrency),
    };
    groupQueueNames(topic, group); // validates
    const subscription = new RabbitSubscription(this.context, topic, group, handler, resolved);
    this.subscriptions.add(subscription);
    try {
      await subscription.start();
    } catch (error) {
      this.subscriptions.delete(subscription);
      throw error;
    }
    return subscription;
  }

  /**
   * Publishes the message, as delivered, to the group's dead-letter queue
   * with `x-bulwark-dead-letter-{error,deliveries,group,topic}` headers, and
   * marks the delivery so that the `term()` that follows only acks it.
   */
  async deadLetter(topic: string, group: string, delivery: Delivery, reason: DeadLetterReason): Promise<void> {
    this.checkOpen();
    const own = delivery instanceof RabbitDelivery ? delivery : this.findDelivery(topic, group, delivery.raw);
    await this.setAside(topic, group, own ?? delivery.raw, reason);
    if (own !== undefined) own.deadLettered = true;
  }

  /**
   * Reads up to `limit` messages of the group's dead-letter queue without
   * removing them: they are fetched unacknowledged (basic.get) and go back to
   * the queue when the reading channel closes. Each read counts as a delivery
   * of the dead letter (its `x-delivery-count` grows), and while the read is
   * under way another consumer of the dead-letter queue cannot see them.
   */
  async readDeadLetters(topic: string, group: string, options: { limit?: number } = {}): Promise<RabbitDeadLetter[]> {
    this.checkOpen();
    const limit = positiveInteger('limit', options.limit ?? 1_000);
    const names = groupQueueNames(topic, group);
    const deliveryLimit = this.declarations.deliveryLimits.get(names.queue);
    return this.declarations.withChannel(async (channel) => {
      const letters: RabbitDeadLetter[] = [];
      try {
        await channel.checkQueue(names.deadLetterQueue);
      } catch {
        return letters; // no such queue: nothing was dead-lettered
      }
      while (letters.length < limit) {
        const message = await channel.get(names.deadLetterQueue, { noAck: false });
        if (message === false) break;
        letters.push(toDeadLetter(message, deliveryLimit));
      }
      return letters;
    });
  }

  /** Stops every subscription (waiting for in-flight handlers), waits for publishes under way, closes the connection. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.subscriptions].map((s) => s.stop()));
      // While reconnecting, publishes wait for a connection: closing it now fails them at once.
      if (!this.connection.isLive) await this.connection.close();
      await this.publisher.close();
      await this.connection.close();
    })();
    return this.closing;
  }

  private checkOpen(): void {
    if (this.closing !== undefined) throw new Error('rabbitmq: the transport is closed');
  }

  private findDelivery(topic: string, group: string, raw: string): RabbitDelivery | undefined {
    for (const subscription of this.subscriptions) {
      if (subscription.topic !== topic || subscription.group !== group) continue;
      for (const delivery of subscription.unsettled) if (delivery.raw === raw && !delivery.deadLettered) return delivery;
    }
    return undefined;
  }

  private async setAside(topic: string, group: string, delivery: RabbitDelivery | string, reason: DeadLetterReason): Promise<void> {
    const names = await this.declarations.deadLetterQueue(topic, group);
    const message = typeof delivery === 'string' ? undefined : delivery.message;
    const content = message?.content ?? Buffer.from(delivery as string, 'utf8');
    const properties = { ...copyProperties(message?.properties), headers: deadLetterHeaders(message?.properties.headers, topic, reason) };
    try {
      await this.publisher.publish(deadLetterExchangeName(this.exchange), names.deadLetterQueue, content, properties, true);
    } catch (error) {
      this.declarations.forget(names.deadLetterQueue); // if it was deleted, the next dead letter declares it again
      throw error;
    }
  }
}

/**
 * Connects to RabbitMQ and declares the exchange (and its dead-letter
 * exchange). Rejects, naming RabbitMQ, when the broker cannot be reached.
 *
 * @example
 * ```ts
 * const transport = await connectRabbitTransport({ url: 'amqp://guest:guest@127.0.0.1:5672', exchange: 'shop.events' });
 * await transport.declareGroup('orders.confirmed', 'billing', { maxDeliveries: 10 });
 * ```
 */
export async function connectRabbitTransport(options: RabbitTransportOptions): Promise<RabbitTransport> {
  const exchange = options.exchange ?? DEFAULT_EXCHANGE;
  if (exchange === '' || exchange.startsWith('amq.')) throw new TypeError(`rabbitmq: invalid exchange ${JSON.stringify(exchange)}`);
  const operationTimeoutMs = options.operationTimeoutMs ?? 30_000;
  const reconnect = { initialDelayMs: options.reconnect?.initialDelayMs ?? 100, maxDelayMs: options.reconnect?.maxDelayMs ?? 5_000 };
  const onError = options.onError ?? ((error: Error) => process.emitWarning(error.message, 'BulwarkRabbitWarning'));
  const connection = await RabbitConnection.open({
    url: options.url,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    connectionName: options.connectionName ?? 'bulwark',
    reconnect,
    onError,
    setup: async (model) => {
      const channel = await model.createChannel();
      channel.on('error', () => undefined);
      try {
        await declareExchanges(channel, exchange);
      } finally {
        await channel.close().catch(() => undefined);
      }
    },
  });
  const declarations = new Declarations(connection, exchange, operationTimeoutMs);
  const publisher = new ConfirmPublisher(connection, operationTimeoutMs);
  return new RabbitTransport(connection, declarations, publisher, exchange, { operationTimeoutMs, reconnect, onError });
}

/**
 * Reads the dead letters `deadLetter` (or RabbitMQ) set aside for (topic,
 * group), without removing them; for the conformance suite's
 * `readDeadLetters` and for tools. See `RabbitTransport.readDeadLetters`.
 *
 * @example
 * ```ts
 * for (const letter of await readRabbitDeadLetters(transport, 'orders.confirmed', 'billing')) console.log(letter.error, letter.deliveries);
 * ```
 */
export function readRabbitDeadLetters(transport: Transport, topic: string, group: string): Promise<RabbitDeadLetter[]> {
  return asRabbitTransport(transport).readDeadLetters(topic, group);
}

/**
 * Publishes raw bytes to a topic (for the conformance suite's `publishRaw`).
 *
 * @example
 * ```ts
 * await publishRabbitRaw(transport, 'orders.confirmed', '{"not":"an envelope"');
 * ```
 */
export function publishRabbitRaw(transport: Transport, topic: string, raw: string | Buffer): Promise<void> {
  return asRabbitTransport(transport).publishRaw(topic, raw);
}

function asRabbitTransport(transport: Transport): RabbitTransport {
  if (!(transport instanceof RabbitTransport)) throw new TypeError(`rabbitmq: expected a RabbitTransport, got the ${transport.name} transport`);
  return transport;
}
