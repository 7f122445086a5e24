import { after } from 'node:test';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import { describeTransportConformance } from '../../testing/index.js';
import { connectEmbeddedTransport, type EmbeddedTransport } from './index.js';

for (const engine of ['sqlite', 'postgres'] as const) {
  const databases: TestDatabase[] = [];
  let shared: TestDatabase | undefined;
  after(async () => {
    await Promise.allSettled(databases.map((d) => d.cleanup()));
  });
  describeTransportConformance({
    name: `embedded on ${engine}`,
    ackWaitMs: 1_000,
    connect: async () => {
      // Every instance joins one bus, as the processes of a monolith would.
      if (shared === undefined) {
        shared = await testDatabase(engine, 'bus');
        databases.push(shared);
      }
      return connectEmbeddedTransport({ url: shared.url, module: shared.module, pollIntervalMs: 50 });
    },
    readDeadLetters: (t, topic, group) => (t as EmbeddedTransport).deadLetters(topic, group),
  });
}
