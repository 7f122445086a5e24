/**
 * The user journeys (`journeys.ts`) on the monolith: a real shop (SQLite files
 * in a temp dir, the embedded bus, a real listener on an ephemeral port).
 */
import { startTestShop } from './invariants/harness.js';
import { describeJourneys } from './journeys.js';

describeJourneys('the shop as a monolith, through its public API', async () => {
  const t = await startTestShop({}, 'shop-journeys-');
  return { url: t.shop.url, internalKey: t.target.internalKey, close: () => t.close() };
});
