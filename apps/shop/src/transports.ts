/**
 * The event transport a shop process uses, by topology and configuration:
 * the embedded bus (`<dataDir>/bus.db`) in the monolith; NATS JetStream or
 * RabbitMQ (`services.transport`) in the services topology, with every name
 * the set owns on the broker behind `services.namespace` so several sets
 * (test runs) can share one broker.
 */
import { join } from 'node:path';
import { connectEmbeddedTransport, type Transport } from '@bulwark/messaging';
import type { ShopConfig } from './config.js';

/** NATS names of a services set: streams `<streamPrefix><topic>` and `<streamPrefix>DLQ`, subjects `<subjectPrefix><topic>`. */
export function natsNames(config: ShopConfig): { streamPrefix: string; subjectPrefix: string } {
  const ns = config.services.namespace;
  return ns === '' ? { streamPrefix: 'SHOP_', subjectPrefix: 'shop.' } : { streamPrefix: `SHOP_${ns.toUpperCase()}_`, subjectPrefix: `shop.${ns}.` };
}

/** The RabbitMQ exchange of a services set. */
export function rabbitExchange(config: ShopConfig): string {
  const ns = config.services.namespace;
  return ns === '' ? 'shop.events' : `shop.${ns}.events`;
}

/**
 * A consumer group's name on the transport. RabbitMQ names a group's queue
 * `<group>@<topic>` whatever the exchange, so the namespace is part of it.
 */
export function consumerGroup(config: ShopConfig, group: string): string {
  const ns = config.topology === 'services' ? config.services.namespace : '';
  return ns === '' ? group : `${ns}-${group}`;
}

/** Connects the transport of one shop process (`processName` is shown by the broker's tools). */
export async function connectShopTransport(config: ShopConfig, processName: string): Promise<Transport> {
  if (config.topology === 'monolith') return connectEmbeddedTransport({ url: `sqlite:${join(config.dataDir, 'bus.db')}` });
  if (config.services.transport === 'rabbitmq') {
    const { connectRabbitTransport } = await import('@bulwark/messaging/rabbitmq');
    return connectRabbitTransport({ url: config.services.rabbitmqUrl, exchange: rabbitExchange(config), connectionName: processName });
  }
  const { connectNatsTransport } = await import('@bulwark/messaging/nats');
  return connectNatsTransport({ servers: config.services.natsUrl, name: processName, ...natsNames(config) });
}
