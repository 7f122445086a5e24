/**
 * The one interface every broker adapter implements. Transports move
 * envelopes; they know nothing of databases, inboxes or handlers' effects.
 * Exactly-once effect is the consumer's job (`subscribe` in this package),
 * built on the at-least-once delivery that every transport gives.
 *
 * Every transport passes the conformance suite in `@bulwark/messaging/testing`.
 */
import type { Envelope } from '../envelope.js';

export interface Transport {
  /** `embedded`, `nats`, `rabbitmq`, ... */
  readonly name: string;
  /**
   * Publishes `envelope` to `topic` and resolves once the broker holds it
   * durably (a publisher confirm, a JetStream ack, a committed row).
   * Publishing the same envelope id twice within the broker's dedup window
   * stores it once where the broker deduplicates (`capabilities.dedup`).
   */
  publish(topic: string, envelope: Envelope): Promise<void>;
  /**
   * Starts delivering `topic` to `group`, a durable consumer whose members
   * share the messages (competing consumers). The first subscription declares
   * the group: messages published from then on are kept for it while no
   * member consumes (on some brokers, RabbitMQ among them, a message published
   * before its group was ever declared reaches nobody). Resolves once the
   * subscription is live.
   */
  subscribe(topic: string, group: string, handler: DeliveryHandler, options?: SubscribeOptions): Promise<Subscription>;
  /**
   * Sets a message aside in the broker's dead-letter queue of (topic, group),
   * with the reason, where tooling outside the service can see it. Call it
   * before settling the delivery with `term` (on RabbitMQ a `term` without it
   * dead-letters the message with a generic reason).
   */
  deadLetter(topic: string, group: string, delivery: Delivery, reason: DeadLetterReason): Promise<void>;
  /** What this transport guarantees beyond the interface. */
  readonly capabilities: TransportCapabilities;
  /** Stops every subscription (finishing in-flight handlers) and closes connections. */
  close(): Promise<void>;
}

export interface TransportCapabilities {
  /** The broker drops a second publish of the same envelope id. */
  dedup: boolean;
}

export interface SubscribeOptions {
  /**
   * Deliveries after which the broker stops redelivering a message (NATS
   * `max_deliver`, RabbitMQ `x-delivery-limit`). A safety net: the consumer
   * dead-letters earlier, with the error. Default 10. On RabbitMQ it is fixed
   * for a group when its queue is first declared.
   */
  maxDeliveries?: number;
  /**
   * A delivery neither acked nor nak'd within this is redelivered (visibility
   * timeout). Where the broker has none for a handler still running
   * (RabbitMQ), it is redelivered when the consumer's connection closes.
   * Default 30 s.
   */
  ackWaitMs?: number;
  /** Deliveries handed to the handler at once. Default 1. */
  concurrency?: number;
}

export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

export interface Delivery {
  /** The message as the broker carried it. */
  readonly raw: string;
  /** The parsed envelope, or `undefined` when `raw` is not a valid envelope (see `parseError`). */
  readonly envelope: Envelope | undefined;
  readonly parseError: Error | undefined;
  /** 1 on the first delivery, 2 on the first redelivery, ... */
  readonly deliveryCount: number;
  /** Done: never deliver again. */
  ack(): Promise<void>;
  /** Not now: deliver again after `delayMs` (default: at once). */
  nak(delayMs?: number): Promise<void>;
  /** Never deliver again, without success (poison; dead-lettered by the caller). */
  term(): Promise<void>;
}

export interface DeadLetterReason {
  error: string;
  deliveries: number;
  consumerGroup: string;
}

export interface Subscription {
  /** Stops fetching, waits for in-flight handlers to settle. Unsettled deliveries are redelivered later. */
  stop(): Promise<void>;
}
