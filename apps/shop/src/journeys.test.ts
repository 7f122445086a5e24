/**
 * The user journeys (`journeys.ts`) on the monolith: a real shop (SQLite files
 * in a temp dir, the embedded bus, a real listener on an ephemeral port).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.js';
import { describeJourneys } from './journeys.js';
import { startShop } from './shop.js';

describeJourneys('the shop as a monolith, through its public API', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shop-journeys-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      port: 0,
      logLevel: 'silent',
      payments: { latencyMs: 1, latencyJitterMs: 2, declineRate: 0, errorRate: 0 },
      recommendations: { latencyMs: 0, errorRate: 0 },
      orders: { sagaDeadlineMs: 30_000, stepAttemptTimeoutMs: 5_000 },
    },
  });
  try {
    const shop = await startShop(config);
    return {
      url: shop.url,
      internalKey: config.internalKey,
      close: async () => {
        await shop.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
});
