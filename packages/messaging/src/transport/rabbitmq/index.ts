/**
 * `@bulwark/messaging/rabbitmq`: the RabbitMQ transport (quorum queues,
 * publisher confirms, explicit delivery limit, dead-letter queues, delayed
 * naks, reconnection).
 *
 * @example
 * ```ts
 * import { connectRabbitTransport } from '@bulwark/messaging/rabbitmq';
 *
 * const transport = await connectRabbitTransport({ url: 'amqp://guest:guest@127.0.0.1:5672' });
 * const subscription = await transport.subscribe('orders.confirmed', 'billing', async (d) => d.ack(), { maxDeliveries: 5 });
 * await transport.publish('orders.confirmed', envelope);
 * await subscription.stop();
 * await transport.close();
 * ```
 */
export {
  connectRabbitTransport,
  readRabbitDeadLetters,
  publishRabbitRaw,
  RabbitTransport,
  type RabbitTransportOptions,
  type DeclareGroupOptions,
} from './rabbitmq-transport.js';
export type { ReconnectOptions } from './connection.js';
export type { DeclaredTopology } from './declarations.js';
export { DELIVERIES_HEADER, DEAD_LETTER_HEADERS, type RabbitDeadLetter } from './headers.js';
export { DEFAULT_EXCHANGE, groupQueueNames, delayQueueName, deadLetterExchangeName, type GroupQueueNames } from './topology.js';
export { delayBucketMs, MAX_DELAY_MS } from './delay-buckets.js';
