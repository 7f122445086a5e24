/**
 * Test support for services-topology runs: the NATS server tests use, and
 * the clean-up that removes a run's data (its PostgreSQL schemas and its
 * JetStream streams, both named after `services.namespace`).
 */
import { dropPostgresSchema } from '@bulwark/store/testing';
import { MODULES, type ShopConfig } from '../config.js';
import { storeNameOf } from '../platform.js';
import { natsNames } from '../transports.js';

export const testNatsUrl = process.env.BULWARK_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** Drops the run's schemas and deletes its streams. */
export async function removeRunData(config: ShopConfig): Promise<void> {
  await Promise.all(MODULES.map((m) => dropPostgresSchema(storeNameOf(config, m), config.services.db)));
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: config.services.natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const { streamPrefix } = natsNames(config);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (name.startsWith(streamPrefix)) names.push(name);
    for (const name of names) await jsm.streams.delete(name);
  } finally {
    await nc.close();
  }
}
