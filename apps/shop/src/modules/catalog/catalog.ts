/**
 * Catalog & pricing: products and their current prices (minor units), in the
 * module's own store. Prices are the server's truth: orders read them here,
 * never from the client.
 *
 * Routes (`/api/catalog`): `GET /products`, `GET /products/:sku`,
 * `GET /prices?skus=A,B` (`{ prices, unknown }`), `GET /prices/:sku`;
 * internal `PUT /prices/:sku` `{ amount }` (admin: change a price).
 */
import type { Migration } from '@bulwark/store';
import type { FastifyInstance } from 'fastify';
import { internalOnly, openModuleStore, shopProblem } from '../../platform.js';
import { CURRENCY, SEED_PRODUCTS } from '../../seed.js';
import type { ModuleContext, ShopModule } from '../module.js';

interface CatalogDb {
  catalog_products: { sku: string; name: string; description: string; category: string; created_at: number };
  catalog_prices: { sku: string; amount: number; currency: string; updated_at: number };
}

const migrations: Migration[] = [
  {
    id: '20261201T1200_catalog',
    up: async (db) => {
      await db.schema
        .createTable('catalog_products')
        .addColumn('sku', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('catalog_prices')
        .addColumn('sku', 'text', (c) => c.primaryKey())
        .addColumn('amount', 'integer', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
];

export const SKU_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$';
const skuParam = { type: 'object', required: ['sku'], properties: { sku: { type: 'string', pattern: SKU_PATTERN } } } as const;

export interface Price {
  sku: string;
  amount: number;
  currency: string;
}

export async function createCatalogModule(ctx: ModuleContext): Promise<ShopModule> {
  const { config } = ctx;
  const store = await openModuleStore<CatalogDb>(config, 'catalog', { catalog: migrations });

  if (config.seed.catalog) {
    const at = Date.now();
    await store.transaction(async (tx) => {
      for (const p of SEED_PRODUCTS) {
        await tx.db.insertInto('catalog_products').values({ sku: p.sku, name: p.name, description: p.description, category: p.category, created_at: at }).onConflict((oc) => oc.doNothing()).execute();
        await tx.db.insertInto('catalog_prices').values({ sku: p.sku, amount: p.price, currency: CURRENCY, updated_at: at }).onConflict((oc) => oc.doNothing()).execute();
      }
    });
  }

  const productQuery = () =>
    store.db
      .selectFrom('catalog_products as p')
      .innerJoin('catalog_prices as c', 'c.sku', 'p.sku')
      .select(['p.sku', 'p.name', 'p.description', 'p.category', 'c.amount', 'c.currency']);
  const present = (r: { sku: string; name: string; description: string; category: string; amount: number; currency: string }) => ({
    sku: r.sku,
    name: r.name,
    description: r.description,
    category: r.category,
    price: { amount: r.amount, currency: r.currency },
  });

  function routes(app: FastifyInstance): void {
    app.get('/products', async () => ({ products: (await productQuery().orderBy('p.sku').execute()).map(present) }));

    app.get<{ Params: { sku: string } }>('/products/:sku', { schema: { params: skuParam } }, async (request) => {
      const row = await productQuery().where('p.sku', '=', request.params.sku).executeTakeFirst();
      if (row === undefined) throw shopProblem('unknown-product', 404, 'Unknown product', `no product ${request.params.sku}`, { sku: request.params.sku });
      return present(row);
    });

    app.get<{ Querystring: { skus: string } }>(
      '/prices',
      { schema: { querystring: { type: 'object', required: ['skus'], properties: { skus: { type: 'string', minLength: 1, maxLength: 4_000 } } } } },
      async (request) => {
        const skus = [...new Set(request.query.skus.split(',').filter((s) => s !== ''))];
        const rows = skus.length === 0 ? [] : await store.db.selectFrom('catalog_prices').select(['sku', 'amount', 'currency']).where('sku', 'in', skus).execute();
        const found = new Set(rows.map((r) => r.sku));
        return { prices: rows satisfies Price[], unknown: skus.filter((s) => !found.has(s)) };
      },
    );

    app.get<{ Params: { sku: string } }>('/prices/:sku', { schema: { params: skuParam } }, async (request) => {
      const row = await store.db.selectFrom('catalog_prices').select(['sku', 'amount', 'currency']).where('sku', '=', request.params.sku).executeTakeFirst();
      if (row === undefined) throw shopProblem('unknown-product', 404, 'Unknown product', `no price for ${request.params.sku}`, { sku: request.params.sku });
      return row;
    });

    app.put<{ Params: { sku: string }; Body: { amount: number } }>(
      '/prices/:sku',
      {
        preHandler: internalOnly(config.internalKey),
        schema: { params: skuParam, body: { type: 'object', required: ['amount'], additionalProperties: false, properties: { amount: { type: 'integer', minimum: 1, maximum: 100_000_000 } } } },
      },
      async (request) => {
        const result = await store.db.updateTable('catalog_prices').set({ amount: request.body.amount, updated_at: Date.now() }).where('sku', '=', request.params.sku).executeTakeFirst();
        if (result.numUpdatedRows === 0n) throw shopProblem('unknown-product', 404, 'Unknown product', `no price for ${request.params.sku}`, { sku: request.params.sku });
        return { sku: request.params.sku, amount: request.body.amount, currency: CURRENCY };
      },
    );
  }

  return {
    name: 'catalog',
    routes,
    ready: () => store.db.selectFrom('catalog_prices').select('sku').limit(1).execute(),
    close: () => store.close(),
  };
}
