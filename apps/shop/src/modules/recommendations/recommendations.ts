/**
 * Recommendations: deliberately flaky. Answers after `latencyMs` and fails
 * with 503 for `errorRate` of requests (seeded, so a run is reproducible).
 * Its model — products related by category — is its own, built from the seed
 * catalog at start; it needs no store.
 *
 * Route (`/api/recommendations`): `GET /for/:userId?sku=` `{ items: [sku] }`.
 */
import type { FastifyInstance } from 'fastify';
import { seededRandom, shopProblem, sleep } from '../../platform.js';
import { SEED_PRODUCTS } from '../../seed.js';
import type { ModuleContext, ShopModule } from '../module.js';

export function createRecommendationsModule(ctx: ModuleContext): ShopModule {
  const { latencyMs, errorRate, seed } = ctx.config.recommendations;
  const random = seededRandom(seed);
  const related = new Map<string, string[]>();
  for (const p of SEED_PRODUCTS) {
    const same = SEED_PRODUCTS.filter((q) => q.sku !== p.sku && q.category === p.category).map((q) => q.sku);
    const other = SEED_PRODUCTS.filter((q) => q.sku !== p.sku && q.category !== p.category).map((q) => q.sku);
    related.set(p.sku, [...same, ...other].slice(0, 4));
  }
  const popular = SEED_PRODUCTS.slice(0, 4).map((p) => p.sku);

  function routes(app: FastifyInstance): void {
    app.get<{ Params: { userId: string }; Querystring: { sku?: string } }>(
      '/for/:userId',
      { schema: { params: { type: 'object', properties: { userId: { type: 'string', minLength: 1, maxLength: 64 } } }, querystring: { type: 'object', properties: { sku: { type: 'string', maxLength: 40 } } } } },
      async (request) => {
        await sleep(latencyMs);
        if (random() < errorRate) throw shopProblem('recommendations-unavailable', 503, 'Recommendations unavailable', 'the recommender failed (simulated)');
        const sku = request.query.sku;
        return { userId: request.params.userId, items: sku !== undefined ? (related.get(sku) ?? popular) : popular };
      },
    );
  }

  return { name: 'recommendations', routes, close: () => Promise.resolve() };
}
