/** `@bulwark/messaging`: envelopes, transports, outbox, relay, consumers with an inbox, dead letters. */
export { uuidv7, uuidv7Time, type Envelope } from './envelope.js';
export { encodeEnvelope, decodeEnvelope, parseDelivery, MalformedEnvelopeError } from './envelope-codec.js';
export type { Transport, TransportCapabilities, SubscribeOptions, DeliveryHandler, Delivery, DeadLetterReason, Subscription } from './transport/transport.js';
