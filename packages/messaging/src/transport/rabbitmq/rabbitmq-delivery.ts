/**
 * A message handed to a handler. Settling is once: the first of `ack`,
 * `nak`, `term` decides, later calls return the same promise. A settle that
 * fails (e.g. the copy for a delayed nak was not confirmed) leaves the
 * delivery unsettled, so it can be settled again.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Envelope } from '../../envelope.js';
import { parseDelivery } from '../../envelope-codec.js';
import type { Delivery } from '../transport.js';
import { deliveryCountOf } from './headers.js';

/** What settling does; implemented by the subscription the delivery came through. */
export interface Settler {
  ack(delivery: RabbitDelivery): Promise<void>;
  nak(delivery: RabbitDelivery, delayMs: number | undefined): Promise<void>;
  term(delivery: RabbitDelivery): Promise<void>;
}

export class RabbitDelivery implements Delivery {
  readonly raw: string;
  readonly envelope: Envelope | undefined;
  readonly parseError: Error | undefined;
  readonly deliveryCount: number;
  /** Set by `deadLetter`: `term` then only acks, the message is already set aside. */
  deadLettered = false;
  /** When it arrived (`performance.now()`), for the ack wait. */
  readonly receivedAt = performance.now();
  /** Requeues the delivery when its handler returned without settling it. */
  ackWaitTimer: NodeJS.Timeout | undefined;
  private settling: Promise<void> | undefined;

  constructor(
    /** The AMQP message, for the transport's internals. */
    readonly message: ConsumeMessage,
    /** The channel it arrived on: the only one that can settle it. */
    readonly channel: Channel,
    private readonly settler: Settler,
  ) {
    this.raw = message.content.toString('utf8');
    const { envelope, parseError } = parseDelivery(this.raw);
    this.envelope = envelope;
    this.parseError = parseError;
    this.deliveryCount = deliveryCountOf(message);
  }

  get settled(): boolean {
    return this.settling !== undefined;
  }

  ack(): Promise<void> {
    return this.settle(() => this.settler.ack(this));
  }

  nak(delayMs?: number): Promise<void> {
    return this.settle(() => this.settler.nak(this, delayMs));
  }

  term(): Promise<void> {
    return this.settle(() => this.settler.term(this));
  }

  private settle(action: () => Promise<void>): Promise<void> {
    if (this.settling !== undefined) return this.settling;
    clearTimeout(this.ackWaitTimer);
    const settling = action().catch((error: unknown) => {
      if (this.settling === settling) this.settling = undefined;
      throw error;
    });
    this.settling = settling;
    return settling;
  }
}
