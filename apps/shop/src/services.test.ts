/**
 * The user journeys (`journeys.ts`) on the services topology: a process per
 * module plus the gateway (`services/launcher.ts`), every module's store a
 * PostgreSQL schema, events over NATS JetStream, module-to-module calls
 * direct between processes, the journeys driven through the gateway only.
 *
 * Each run has its own namespace (schemas `<ns>_<module>`, streams
 * `SHOP_<NS>_*`), removed afterwards. Stopping the set must end every process
 * with exit code 0.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { testPostgresUrl } from '@bulwark/store/testing';
import { loadConfig, MODULES } from './config.js';
import { describeJourneys } from './journeys.js';
import { startServices, type ServicesSet } from './services/launcher.js';
import { removeRunData, testNatsUrl } from './services/run-data.js';

const natsUrl = testNatsUrl;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describeJourneys('the shop as services (a process per module behind the gateway, PostgreSQL, NATS JetStream)', async () => {
  const config = loadConfig({
    env: {},
    overrides: {
      topology: 'services',
      port: 0,
      logLevel: 'silent',
      telemetry: { enabled: false },
      services: { transport: 'nats', natsUrl, db: testPostgresUrl, namespace: `shoptest${randomBytes(4).toString('hex')}`, poolSize: 3, startTimeoutMs: 45_000 },
      payments: { latencyMs: 1, latencyJitterMs: 2, declineRate: 0, errorRate: 0 },
      recommendations: { latencyMs: 0, errorRate: 0 },
      orders: { sagaDeadlineMs: 30_000, stepAttemptTimeoutMs: 5_000 },
    },
  });
  let set: ServicesSet;
  try {
    set = await startServices(config);
  } catch (error) {
    await removeRunData(config).catch(() => undefined);
    throw error;
  }
  const { url, pids } = set;
  return {
    url,
    internalKey: config.internalKey,
    close: async () => {
      try {
        const exits = await set.stop();
        assert.deepEqual(Object.keys(exits).sort(), [...MODULES, 'gateway'].sort());
        for (const [name, exit] of Object.entries(exits)) assert.deepEqual(exit, { code: 0, signal: null }, `${name} exited ${JSON.stringify(exit)}`);
        for (const [name, pid] of Object.entries(pids)) assert.equal(alive(pid), false, `${name} (pid ${pid}) outlived the set`);
      } finally {
        await removeRunData(config);
      }
    },
  };
});
