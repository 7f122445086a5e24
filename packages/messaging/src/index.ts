/** `@bulwark/messaging`: envelopes, transports, transactional outbox and relay, exactly-once-effect consumers, dead letters. */
export { uuidv7, uuidv7Time, type Envelope } from './envelope.js';
export { encodeEnvelope, decodeEnvelope, parseDelivery, MalformedEnvelopeError } from './envelope-codec.js';
export { defineMessage, type MessageType } from './message-type.js';
export { InvalidMessageError, MessagingConfigError, isInvalidMessageError, isMessagingConfigError } from './errors.js';
export type { Transport, TransportCapabilities, SubscribeOptions, DeliveryHandler, Delivery, DeadLetterReason, Subscription } from './transport/transport.js';
export { messagingMigrations, type MessagingTables } from './schema/messaging-migrations.js';
export { Outbox, OUTBOX_SIGNAL, type OutboxMessage } from './outbox/outbox.js';
export { OutboxRelay, type OutboxRelayOptions, type OutboxRelayEvents } from './outbox/outbox-relay.js';
export { OUTBOX_PARTITIONS, partitionOf } from './outbox/partition.js';
export { Handlers, type HandlerContext, type MessageHandler } from './consumer/handlers.js';
export { Consumer, consume, type ConsumerOptions, type ConsumerEvents, type ConsumeOutcome } from './consumer/consumer.js';
export { DeadLetters, type DeadLetter, type DeadLetterQuery } from './consumer/dead-letters.js';
export { connectEmbeddedTransport, EmbeddedTransport, busMigrations, type EmbeddedTransportOptions, type BusTables } from './transport/embedded/index.js';
export { setMessagingInstrumentation, messagingInstrumentation, type MessagingInstrumentation, type HandleInfo } from './instrumentation.js';
