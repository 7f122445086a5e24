/**
 * One consumer of a group's queue: its own channel, `prefetch(concurrency)`,
 * manual acks. When the channel closes under it (a broker restart, a lost
 * connection, `consumer_timeout`, RabbitMQ cancelling the consumer), it
 * re-declares its queues and consumes again, with backoff, until stopped.
 *
 * Settling:
 * - `ack()`: basic.ack.
 * - `nak()` / `nak(0)`: basic.nack with requeue (the quorum queue counts it).
 * - `nak(delayMs)`: a copy goes to the group's delay queue for the delay's
 *   bucket (see `delay-buckets.ts`) with `x-bulwark-deliveries` = deliveries
 *   so far; once the broker confirms the copy the original is acked. Expired,
 *   the copy goes back to this group's queue only.
 * - `term()`: the message is set aside in the group's dead-letter queue
 *   (unless `deadLetter` already did) and acked: it lands in the DLQ once,
 *   with its delivery count. If that publish fails, basic.reject without
 *   requeue, and RabbitMQ dead-letters it through the queue's DLX.
 * - `maxDeliveries`: a nak on the last allowed delivery sets the message
 *   aside instead of redelivering it, and a delivery numbered above the
 *   limit (its consumers crashed or closed without settling) is set aside
 *   without calling the handler. The queue's `x-delivery-limit`
 *   (= `maxDeliveries`) is the broker's backstop for when even that fails.
 *
 * Ack wait: a handler that returns without settling has its delivery
 * requeued `ackWaitMs` after it arrived; one that throws without settling is
 * nak'd at once. A handler still running holds its message: RabbitMQ takes
 * it back when the channel or connection closes, or after the broker's
 * `consumer_timeout` (30 min by default), which closes the channel.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import type { DeadLetterReason, DeliveryHandler, SubscribeOptions, Subscription } from '../transport.js';
import { backoffDelayMs, type RabbitConnection, type ReconnectOptions } from './connection.js';
import type { Declarations } from './declarations.js';
import { delayBucketMs } from './delay-buckets.js';
import { copyProperties, DELIVERIES_HEADER, ownHeaders } from './headers.js';
import type { ConfirmPublisher } from './publisher.js';
import { RabbitDelivery, type Settler } from './rabbitmq-delivery.js';
import { groupQueueNames } from './topology.js';

/** What a subscription needs from its transport. */
export interface SubscriptionContext {
  readonly connection: RabbitConnection;
  readonly declarations: Declarations;
  readonly publisher: ConfirmPublisher;
  readonly operationTimeoutMs: number;
  readonly reconnect: Required<ReconnectOptions>;
  onError(error: Error): void;
  /** Publishes the message to the group's dead-letter queue with `reason`. */
  setAside(topic: string, group: string, delivery: RabbitDelivery, reason: DeadLetterReason): Promise<void>;
  stopped(subscription: RabbitSubscription): void;
}

export class RabbitSubscription implements Subscription {
  /** Deliveries not settled yet (for `deadLetter` to find a wrapped one). */
  readonly unsettled = new Set<RabbitDelivery>();
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private readonly closedChannels = new WeakSet<Channel>();
  private isStopped = false;
  private stopping: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAttempt = 0;
  /** Handlers and settles under way. */
  private readonly work = new Set<Promise<void>>();
  private readonly settler: Settler = {
    ack: (d) => this.onChannel(d, 'ack', (channel) => channel.ack(d.message)),
    nak: (d, delayMs) => this.nak(d, delayMs),
    term: (d) => this.term(d),
  };

  constructor(
    private readonly ctx: SubscriptionContext,
    readonly topic: string,
    readonly group: string,
    private readonly handler: DeliveryHandler,
    private readonly options: Required<SubscribeOptions>,
  ) {}

  /** Declares the group's queues and starts consuming; rejects when it cannot. */
  start(): Promise<void> {
    return this.consume();
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async consume(): Promise<void> {
    const names = await this.ctx.declarations.group(this.topic, this.group, this.options.maxDeliveries);
    const { model } = await this.ctx.connection.get(this.ctx.operationTimeoutMs);
    const channel = await model.createChannel();
    channel.on('error', (error: Error) => {
      if (!this.isStopped) this.ctx.onError(new Error(`rabbitmq: consumer channel of ${names.queue} failed: ${error.message}`, { cause: error }));
    });
    channel.on('close', () => this.channelClosed(channel));
    try {
      await channel.prefetch(this.options.concurrency);
      const { consumerTag } = await channel.consume(names.queue, (message) => this.receive(channel, message), { noAck: false });
      if (this.closedChannels.has(channel)) throw new Error(`rabbitmq: the channel closed while subscribing to ${names.queue}`);
      if (this.isStopped) {
        // stop() came while this (re)start was under way: what arrived goes back to the queue.
        await channel.close().catch(() => undefined);
        return;
      }
      this.channel = channel;
      this.consumerTag = consumerTag;
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw error;
    }
  }

  private receive(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // RabbitMQ cancelled the consumer (queue deleted, ...): start over, which re-declares.
      this.ctx.onError(new Error(`rabbitmq: RabbitMQ cancelled the consumer of ${this.group}@${this.topic}; subscribing again`));
      this.ctx.declarations.forget(groupQueueNames(this.topic, this.group).queue);
      void channel.close().catch(() => undefined);
      return;
    }
    if (this.isStopped && channel !== this.channel) return; // a restart that lost the race with stop(): left unacked, returned on close
    const delivery = new RabbitDelivery(message, channel, this.settler);
    this.unsettled.add(delivery);
    const { maxDeliveries } = this.options;
    if (delivery.deliveryCount > maxDeliveries) {
      const why = `delivered ${delivery.deliveryCount} times, more than maxDeliveries (${maxDeliveries}): earlier deliveries were never settled`;
      this.track(this.setAsideAndAck(delivery, why, delivery.deliveryCount - 1));
      return;
    }
    this.track(this.run(delivery));
  }

  private async run(delivery: RabbitDelivery): Promise<void> {
    let threw = false;
    try {
      await this.handler(delivery);
    } catch (error) {
      threw = true;
      this.ctx.onError(new Error(`rabbitmq: the handler of ${this.group}@${this.topic} threw: ${(error as Error)?.message}`, { cause: error }));
    }
    if (delivery.settled || !this.unsettled.has(delivery)) return;
    if (threw) {
      await delivery.nak().catch((error: unknown) => this.report(error));
      return;
    }
    const wait = Math.max(0, delivery.receivedAt + this.options.ackWaitMs - performance.now());
    delivery.ackWaitTimer = setTimeout(() => this.track(delivery.nak().catch((error: unknown) => this.report(error))), wait);
  }

  private async nak(delivery: RabbitDelivery, delayMs: number | undefined): Promise<void> {
    const { maxDeliveries } = this.options;
    if (delivery.deliveryCount >= maxDeliveries) {
      const why = `nak'd on delivery ${delivery.deliveryCount}, the last of maxDeliveries (${maxDeliveries})`;
      return this.setAsideAndAck(delivery, why, delivery.deliveryCount);
    }
    if (delayMs === undefined || delayMs <= 0) return this.onChannel(delivery, 'nak', (channel) => channel.nack(delivery.message, false, true));
    const bucket = delayBucketMs(delayMs);
    const queue = await this.ctx.declarations.delayQueue(this.topic, this.group, bucket);
    const { properties, content } = delivery.message;
    const headers = { ...ownHeaders(properties.headers), [DELIVERIES_HEADER]: delivery.deliveryCount };
    try {
      await this.ctx.publisher.publish('', queue, content, { ...copyProperties(properties), headers, expiration: String(Math.ceil(delayMs)) }, true);
    } catch (error) {
      this.ctx.declarations.forget(queue); // if it was deleted, the next nak declares it again
      throw error;
    }
    return this.onChannel(delivery, 'ack after the delayed copy', (channel) => channel.ack(delivery.message));
  }

  private term(delivery: RabbitDelivery): Promise<void> {
    if (delivery.deadLettered) return this.onChannel(delivery, 'ack (dead-lettered)', (channel) => channel.ack(delivery.message));
    return this.setAsideAndAck(delivery, 'terminated by the consumer (no dead-letter reason given)', delivery.deliveryCount);
  }

  /** Dead-letters with the reason, then acks; if the dead letter cannot be published, rejects into the queue's DLX. */
  private async setAsideAndAck(delivery: RabbitDelivery, error: string, deliveries: number): Promise<void> {
    try {
      await this.ctx.setAside(this.topic, this.group, delivery, { error, deliveries, consumerGroup: this.group });
    } catch (failure) {
      this.report(failure);
      return this.onChannel(delivery, 'reject', (channel) => channel.reject(delivery.message, false));
    }
    return this.onChannel(delivery, 'ack (dead-lettered)', (channel) => channel.ack(delivery.message));
  }

  /**
   * Settles on the delivery's channel. If that channel has closed, RabbitMQ
   * has already taken the message back and will redeliver it: reported, not
   * thrown (at-least-once; the consumer's inbox drops the repeat).
   */
  private onChannel(delivery: RabbitDelivery, what: string, settle: (channel: Channel) => void): Promise<void> {
    this.unsettled.delete(delivery);
    if (this.closedChannels.has(delivery.channel)) {
      this.report(new Error(`rabbitmq: could not ${what} a delivery of ${this.group}@${this.topic}: its channel closed; RabbitMQ redelivers it`));
      return Promise.resolve();
    }
    try {
      settle(delivery.channel);
    } catch (error) {
      this.report(error);
    }
    return Promise.resolve();
  }

  private channelClosed(channel: Channel): void {
    this.closedChannels.add(channel);
    for (const delivery of this.unsettled) {
      if (delivery.channel !== channel) continue;
      clearTimeout(delivery.ackWaitTimer);
      this.unsettled.delete(delivery);
    }
    if (this.channel !== channel) return;
    this.channel = undefined;
    this.consumerTag = undefined;
    if (!this.isStopped) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = backoffDelayMs(this.restartAttempt++, this.ctx.reconnect);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.isStopped) return;
      this.start().then(
        () => {
          this.restartAttempt = 0;
        },
        (error: unknown) => {
          if (this.isStopped) return;
          this.report(error);
          this.scheduleRestart();
        },
      );
    }, delay);
  }

  private async shutdown(): Promise<void> {
    this.isStopped = true;
    clearTimeout(this.restartTimer);
    // A (re)start under way is not awaited: it may be waiting for a connection; it closes its channel when it sees the stop.
    const channel = this.channel;
    if (channel !== undefined && this.consumerTag !== undefined) await channel.cancel(this.consumerTag).catch(() => undefined);
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
    for (const delivery of this.unsettled) clearTimeout(delivery.ackWaitTimer);
    this.channel = undefined;
    // Unsettled deliveries go back to the queue when the channel closes.
    if (channel !== undefined) await channel.close().catch(() => undefined);
    this.ctx.stopped(this);
  }

  private track(work: Promise<void>): void {
    this.work.add(work);
    const done = (): void => void this.work.delete(work);
    work.then(done, (error: unknown) => {
      done();
      this.report(error);
    });
  }

  private report(error: unknown): void {
    this.ctx.onError(error instanceof Error ? error : new Error(String(error)));
  }
}
