export { connectEmbeddedTransport, EmbeddedTransport, BUS_SIGNAL, type EmbeddedTransportOptions } from './embedded-transport.js';
export { busMigrations, type BusTables } from './bus-migrations.js';
