/**
 * `@bulwark/messaging/nats`: the NATS JetStream transport.
 *
 * ```ts
 * import { connectNatsTransport } from '@bulwark/messaging/nats';
 *
 * const transport = await connectNatsTransport({ servers: '127.0.0.1:4222', name: 'billing' });
 * ```
 */
export { connectNatsTransport, readNatsDeadLetters, NatsTransport } from './nats-transport.js';
export { NatsDelivery } from './nats-delivery.js';
export { DeadLetterHeaders, type NatsDeadLetter } from './dead-letters.js';
export type { NatsTransportOptions, NatsErrorContext } from './nats-options.js';
export { natsSafeName, topicStreamName, deadLetterStreamName, groupConsumerName } from './nats-names.js';
