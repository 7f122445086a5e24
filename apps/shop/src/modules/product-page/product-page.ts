/**
 * The product page: one call that aggregates catalog, pricing, inventory and
 * recommendations, each dependency behind its own bulkhead (so a slow
 * recommender cannot take the slots the price lookups need) and its own
 * client (timeout, circuit breaker).
 *
 * - recommendations fall back to the last good answer for this user, else an
 *   empty list (`recommendations.source`: `live`, `last-good`, `none`);
 * - pricing and inventory have no fallback: a page without a true price or
 *   stock is refused (503) rather than overselling;
 * - an unknown product is 404.
 *
 * Route (`/api/product-page`): `GET /:sku` (a bearer token is optional; it
 * personalises the recommendations).
 */
import { problem, isProblemError } from '@bulwark/http';
import { bearerAuth } from '@bulwark/http/auth';
import { HttpStatusError, type HttpClient } from '@bulwark/http/client';
import { bulkhead, fallback, pipeline, type Policy } from '@bulwark/resilience';
import type { FastifyInstance } from 'fastify';
import type { ModuleName } from '../../config.js';
import { shopProblem } from '../../platform.js';
import { SKU_PATTERN } from '../catalog/catalog.js';
import type { ModuleContext, ShopModule } from '../module.js';

interface Product {
  sku: string;
  name: string;
  description: string;
  category: string;
}

const LAST_GOOD_MAX = 10_000;

export function createProductPageModule(ctx: ModuleContext): ShopModule {
  const { config, directory, verifier } = ctx;
  const slots = config.productPage.bulkheads;
  const timeoutMs = config.productPage.timeoutMs;
  const lastGood = new Map<string, string[]>();

  const dependency = (name: 'catalog' | 'pricing' | 'inventory' | 'recommendations', module: ModuleName, maxConcurrent: number) => {
    const guard = bulkhead({ name: `product-page.${name}`, maxConcurrent, maxQueue: maxConcurrent, maxQueueWaitMs: Math.min(100, timeoutMs) });
    const client = (): HttpClient => directory.client(module, `product-page-${name}`, { timeoutMs, deadlineMs: timeoutMs * 2, retry: name === 'recommendations' ? 'none' : 'default' });
    return { guard, client };
  };
  const catalog = dependency('catalog', 'catalog', slots.catalog);
  const pricing = dependency('pricing', 'catalog', slots.pricing);
  const inventory = dependency('inventory', 'inventory', slots.inventory);
  const recs = dependency('recommendations', 'recommendations', slots.recommendations);

  const call = <T>(dep: { guard: Policy; client: () => HttpClient }, path: string, query?: Record<string, string>): Promise<T> =>
    dep.guard.execute(({ signal }) => dep.client().get<T>(path, { signal, ...(query === undefined ? {} : { query }) }));

  /** No fallback: a failure is the page's failure, as a 503 (or the 404 of an unknown product). */
  const required = async <T>(name: string, sku: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      if (error instanceof HttpStatusError && error.status === 404) throw shopProblem('unknown-product', 404, 'Unknown product', `no product ${sku}`, { sku });
      if (isProblemError(error)) throw error;
      if (error instanceof HttpStatusError || (error as { code?: unknown })?.code === 'BULWARK_HTTP_NETWORK') throw problem('dependency-unavailable', `${name} did not answer`);
      throw error; // resilience refusals render as dependency-unavailable / dependency-timeout
    }
  };

  async function recommendationsFor(user: string, sku: string): Promise<{ items: string[]; source: 'live' | 'last-good' | 'none' }> {
    const policy = pipeline(
      fallback(() => {
        const last = lastGood.get(user);
        return last === undefined ? { items: [], source: 'none' as const } : { items: last, source: 'last-good' as const };
      }, { name: 'product-page.recommendations.fallback' }),
      recs.guard,
    );
    return policy.execute(async ({ signal }) => {
      const answer = await recs.client().get<{ items: string[] }>(`/for/${encodeURIComponent(user)}`, { signal, query: { sku } });
      lastGood.delete(user);
      lastGood.set(user, answer.items);
      if (lastGood.size > LAST_GOOD_MAX) lastGood.delete(lastGood.keys().next().value as string);
      return { items: answer.items, source: 'live' as const };
    });
  }

  async function routes(app: FastifyInstance): Promise<void> {
    await app.register(bearerAuth, { verifier, defaultAuth: 'optional' });
    app.get<{ Params: { sku: string } }>('/:sku', { schema: { params: { type: 'object', properties: { sku: { type: 'string', pattern: SKU_PATTERN } } } } }, async (request) => {
      const { sku } = request.params;
      const user = request.user?.sub ?? 'anonymous';
      const [product, price, stock, recommendations] = await Promise.all([
        required('catalog', sku, () => call<Product>(catalog, `/products/${encodeURIComponent(sku)}`)),
        required('pricing', sku, () => call<{ amount: number; currency: string }>(pricing, `/prices/${encodeURIComponent(sku)}`)),
        required('inventory', sku, () => call<{ available: number }>(inventory, `/stock/${encodeURIComponent(sku)}`)),
        recommendationsFor(user, sku),
      ]);
      return {
        sku,
        name: product.name,
        description: product.description,
        category: product.category,
        price: { amount: price.amount, currency: price.currency },
        availability: { available: stock.available, inStock: stock.available > 0 },
        recommendations,
      };
    });
  }

  return { name: 'productPage', routes, close: () => Promise.resolve() };
}
