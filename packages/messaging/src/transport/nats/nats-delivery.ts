/** A JetStream message seen through the transport's `Delivery` interface. */
import type { JsMsg } from '@nats-io/jetstream';
import type { Envelope } from '../../envelope.js';
import { parseDelivery } from '../../envelope-codec.js';
import type { Delivery } from '../transport.js';

const decoder = new TextDecoder();

/**
 * One delivery of a JetStream message. The first settle call (`ack`, `nak`,
 * `term`) wins; later ones do nothing. Each resolves once the server has read
 * it (a flush), not after a JetStream ack-of-the-ack: JetStream records acks
 * asynchronously, so even a confirmed ack can be lost in a hard crash and the
 * message redelivered — the consumer's inbox absorbs that — and a round trip
 * per message would halve a consumer's throughput for no guarantee gained.
 *
 * ```ts
 * await transport.subscribe('orders.confirmed', 'billing', async (d) => {
 *   if (d instanceof NatsDelivery) console.log(d.stream, d.streamSequence);
 *   await d.ack();
 * });
 * ```
 */
export class NatsDelivery implements Delivery {
  readonly raw: string;
  readonly envelope: Envelope | undefined;
  readonly parseError: Error | undefined;
  readonly deliveryCount: number;
  /** The stream the message is stored in. */
  readonly stream: string;
  /** The message's sequence number in its stream. */
  readonly streamSequence: number;
  /** The message's bytes as stored. */
  readonly data: Uint8Array;
  #settled = false;

  /** @internal Built by the transport for each message it fetches. */
  constructor(
    private readonly msg: JsMsg,
    private readonly confirm: () => Promise<void>,
  ) {
    this.data = msg.data;
    this.raw = decoder.decode(msg.data);
    const { envelope, parseError } = parseDelivery(this.raw);
    this.envelope = envelope;
    this.parseError = parseError;
    this.deliveryCount = msg.info.deliveryCount;
    this.stream = msg.info.stream;
    this.streamSequence = msg.seq;
  }

  /** Whether `ack`, `nak` or `term` was called. */
  get settled(): boolean {
    return this.#settled;
  }

  async ack(): Promise<void> {
    if (!this.claim()) return;
    this.msg.ack();
    await this.confirm();
  }

  async nak(delayMs?: number): Promise<void> {
    if (!this.claim()) return;
    this.msg.nak(delayMs !== undefined && delayMs > 0 ? Math.ceil(delayMs) : undefined);
    await this.confirm();
  }

  async term(): Promise<void> {
    if (!this.claim()) return;
    this.msg.term();
    await this.confirm();
  }

  private claim(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    return true;
  }
}
