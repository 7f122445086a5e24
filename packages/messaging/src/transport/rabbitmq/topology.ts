/**
 * RabbitMQ names and declarations for the transport.
 *
 * ```
 * publish ──► <exchange> (topic, durable) ──routing key = topic──► <group>@<topic>            (quorum, x-delivery-limit)
 *                                                                    │ dead-letter (x-delivery-limit, reject)
 *                                                                    ▼
 *             <exchange>.dead-letter (direct) ──key = queue name──► <group>@<topic>#dead       (quorum)
 *
 * nak(delay) ─► <group>@<topic>#delay.<bucket>ms (quorum, per-message TTL) ──expired, default exchange──► <group>@<topic>
 * ```
 *
 * A group's queue only hears its topic: a delayed message goes back to the
 * one queue it came from, never to the other groups of the topic.
 */
import type { Channel } from 'amqplib';

/** The exchange every topic is published to unless `exchange` is given. */
export const DEFAULT_EXCHANGE = 'bulwark.events';

/** Names of the queues for one (topic, group). */
export interface GroupQueueNames {
  /** The group's work queue, bound to the exchange with the topic. */
  readonly queue: string;
  /** Where the group's dead letters are set aside. */
  readonly deadLetterQueue: string;
}

/** Suffix limit: `#delay.` + a bucket of up to 10 digits + `ms`. */
const LONGEST_SUFFIX = '#delay.0000000000ms'.length;

/**
 * The queue names of (topic, group): `<group>@<topic>`, `<group>@<topic>#dead`.
 * `@` and `#` cannot occur in a group, and `#` cannot occur in a topic (it is
 * a wildcard in topic-exchange bindings), so names never collide.
 *
 * @example
 * ```ts
 * groupQueueNames('orders.confirmed', 'billing'); // { queue: 'billing@orders.confirmed', deadLetterQueue: 'billing@orders.confirmed#dead' }
 * ```
 */
export function groupQueueNames(topic: string, group: string): GroupQueueNames {
  checkTopic(topic);
  checkGroup(group);
  const queue = `${group}@${topic}`;
  if (Buffer.byteLength(queue) + LONGEST_SUFFIX > 255) throw new RangeError(`rabbitmq: group and topic too long for a queue name (255 bytes): ${queue}`);
  return { queue, deadLetterQueue: `${queue}#dead` };
}

/**
 * The delay queue of (topic, group) for one delay bucket.
 *
 * @example
 * ```ts
 * delayQueueName('orders.confirmed', 'billing', 300); // 'billing@orders.confirmed#delay.300ms'
 * ```
 */
export function delayQueueName(topic: string, group: string, bucketMs: number): string {
  return `${groupQueueNames(topic, group).queue}#delay.${bucketMs}ms`;
}

/**
 * The direct exchange dead letters go through (the work queue's `x-dead-letter-exchange`).
 *
 * @example
 * ```ts
 * deadLetterExchangeName('bulwark.events'); // 'bulwark.events.dead-letter'
 * ```
 */
export function deadLetterExchangeName(exchange: string): string {
  return `${exchange}.dead-letter`;
}

/** Throws unless `topic` can be a routing key and a binding key (no wildcards). */
export function checkTopic(topic: string): void {
  if (topic === '' || /[*#]/.test(topic) || Buffer.byteLength(topic) > 255) {
    throw new TypeError(`rabbitmq: invalid topic ${JSON.stringify(topic)} (non-empty, at most 255 bytes, no "*" or "#")`);
  }
}

function checkGroup(group: string): void {
  if (group === '' || /[@#]/.test(group) || group.startsWith('amq.')) {
    throw new TypeError(`rabbitmq: invalid group ${JSON.stringify(group)} (non-empty, no "@" or "#", not starting with "amq.")`);
  }
}

const QUORUM = { 'x-queue-type': 'quorum' } as const;
/** Dead-lettering that survives a crash between source and target (RabbitMQ >= 3.10). */
const AT_LEAST_ONCE_DEAD_LETTERING = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' } as const;

/** Declares the durable topic exchange and its dead-letter exchange. */
export async function declareExchanges(channel: Channel, exchange: string): Promise<void> {
  await channel.assertExchange(exchange, 'topic', { durable: true });
  await channel.assertExchange(deadLetterExchangeName(exchange), 'direct', { durable: true });
}

/**
 * Declares the group's dead-letter queue and binds it to the dead-letter
 * exchange (idempotent).
 */
export async function declareDeadLetterQueue(channel: Channel, exchange: string, names: GroupQueueNames): Promise<void> {
  await channel.assertQueue(names.deadLetterQueue, { durable: true, arguments: { ...QUORUM } });
  await channel.bindQueue(names.deadLetterQueue, deadLetterExchangeName(exchange), names.deadLetterQueue);
}

/**
 * Declares the group's work queue: quorum, `x-delivery-limit` = `maxDeliveries`
 * (the broker's backstop: the transport itself stops at `maxDeliveries`, see
 * `RabbitSubscription`), dead letters to the group's dead-letter queue, bound
 * to the exchange with the topic.
 */
export async function declareGroupQueue(channel: Channel, exchange: string, topic: string, names: GroupQueueNames, maxDeliveries: number): Promise<void> {
  await declareDeadLetterQueue(channel, exchange, names);
  await channel.assertQueue(names.queue, {
    durable: true,
    arguments: {
      ...QUORUM,
      ...AT_LEAST_ONCE_DEAD_LETTERING,
      'x-delivery-limit': maxDeliveries,
      'x-dead-letter-exchange': deadLetterExchangeName(exchange),
      'x-dead-letter-routing-key': names.deadLetterQueue,
    },
  });
  await channel.bindQueue(names.queue, exchange, topic);
}

/**
 * Declares a delay queue: messages wait there until their per-message TTL
 * (`expiration`) runs out, then are dead-lettered through the default
 * exchange straight into `targetQueue`.
 */
export async function declareDelayQueue(channel: Channel, name: string, targetQueue: string): Promise<void> {
  await channel.assertQueue(name, {
    durable: true,
    arguments: { ...QUORUM, ...AT_LEAST_ONCE_DEAD_LETTERING, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': targetQueue },
  });
}
