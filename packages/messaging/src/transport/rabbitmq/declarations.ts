/**
 * Declares topology once per connection. Each declaration runs on its own
 * short-lived channel, because RabbitMQ answers a declaration that conflicts
 * with an existing queue (other arguments) by closing the channel.
 * Remembers every name this transport declared (`declared`), for tooling and
 * for tests that clean up after themselves.
 */
import type { Channel } from 'amqplib';
import type { RabbitConnection } from './connection.js';
import {
  declareDeadLetterQueue,
  declareDelayQueue,
  declareGroupQueue,
  deadLetterExchangeName,
  delayQueueName,
  groupQueueNames,
  type GroupQueueNames,
} from './topology.js';

/** What a transport declared: exchanges and queues, by name. */
export interface DeclaredTopology {
  readonly exchanges: readonly string[];
  readonly queues: readonly string[];
}

export class Declarations {
  private generation = -1;
  /** Declarations made on the current connection, by key, with the queues each declared. */
  private done = new Map<string, { promise: Promise<void>; queues: string[] }>();
  private readonly exchanges = new Set<string>();
  private readonly queues = new Set<string>();
  /** `maxDeliveries` each work queue was declared with (its `x-delivery-limit`). */
  readonly deliveryLimits = new Map<string, number>();

  constructor(
    private readonly connection: RabbitConnection,
    private readonly exchange: string,
    private readonly timeoutMs: number,
  ) {
    this.exchanges.add(exchange).add(deadLetterExchangeName(exchange));
  }

  get declared(): DeclaredTopology {
    return { exchanges: [...this.exchanges], queues: [...this.queues] };
  }

  /** The group's work queue, its dead-letter queue and the binding. */
  async group(topic: string, group: string, maxDeliveries: number): Promise<GroupQueueNames> {
    const names = groupQueueNames(topic, group);
    await this.once(`group:${names.queue}:${maxDeliveries}`, [names.queue, names.deadLetterQueue], (channel) =>
      declareGroupQueue(channel, this.exchange, topic, names, maxDeliveries),
    );
    this.deliveryLimits.set(names.queue, maxDeliveries);
    return names;
  }

  /** The group's dead-letter queue alone (for `deadLetter` without a subscription). */
  async deadLetterQueue(topic: string, group: string): Promise<GroupQueueNames> {
    const names = groupQueueNames(topic, group);
    await this.once(`dead:${names.deadLetterQueue}`, [names.deadLetterQueue], (channel) => declareDeadLetterQueue(channel, this.exchange, names));
    return names;
  }

  /** The delay queue of one bucket; returns its name. */
  async delayQueue(topic: string, group: string, bucketMs: number): Promise<string> {
    const name = delayQueueName(topic, group, bucketMs);
    const target = groupQueueNames(topic, group).queue;
    await this.once(`delay:${name}`, [name], (channel) => declareDelayQueue(channel, name, target));
    return name;
  }

  /**
   * Forgets that `queue` was declared on this connection, so the next use
   * declares it again (after RabbitMQ cancelled a consumer or returned an
   * unroutable copy: someone deleted the queue).
   */
  forget(queue: string): void {
    for (const [key, { queues }] of this.done) if (queues.includes(queue)) this.done.delete(key);
  }

  /** Runs `work` on a channel of its own, closed afterwards. */
  async withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    const { model } = await this.connection.get(this.timeoutMs);
    const channel = await model.createChannel();
    channel.on('error', () => undefined); // reported through the rejected operation
    try {
      return await work(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  private async once(key: string, queues: string[], declare: (channel: Channel) => Promise<void>): Promise<void> {
    const { generation } = await this.connection.get(this.timeoutMs);
    if (generation !== this.generation) {
      this.generation = generation;
      this.done = new Map();
    }
    let done = this.done.get(key);
    if (done === undefined) {
      for (const queue of queues) this.queues.add(queue);
      const promise = this.withChannel(declare).catch((error: unknown) => {
        if (this.done.get(key) === done) this.done.delete(key);
        throw explain(error, queues);
      });
      done = { promise, queues };
      this.done.set(key, done);
    }
    return done.promise;
  }
}

function explain(error: unknown, queues: string[]): Error {
  const message = error instanceof Error ? error.message : String(error);
  const hint = /PRECONDITION_FAILED|inequivalent arg/.test(message)
    ? ' (the queue exists with other arguments, e.g. another maxDeliveries: delete it or use the same options)'
    : '';
  return new Error(`rabbitmq: declaring ${queues.join(', ')} failed: ${message}${hint}`, { cause: error });
}
