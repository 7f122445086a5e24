/**
 * The composition root: builds the modules a process hosts, mounts each at
 * `/api/<module>` on one kit service, listens, then tells the directory where
 * every module is and starts their background work.
 *
 * Monolith (this build): every module in this process, a SQLite file per
 * module under `dataDir`, the embedded bus (`<dataDir>/bus.db`). Modules
 * still call each other over HTTP through their clients and policies — to
 * this process's own listener on loopback — so the code path is the one the
 * services topology takes; only the addresses differ.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createService } from '@bulwark/http';
import { JwtVerifier } from '@bulwark/http/auth';
import { connectEmbeddedTransport } from '@bulwark/messaging';
import { fastifyTelemetry, instrumentHttpClient, instrumentResilience, instrumentSagas, Metrics, metricsRoute, setupTelemetry, type Telemetry } from '@bulwark/telemetry';
import { join } from 'node:path';
import { MODULES, type ShopConfig } from './config.js';
import { Directory } from './platform.js';
import { createCatalogModule } from './modules/catalog/catalog.js';
import { createInventoryModule, type InventoryModule } from './modules/inventory/inventory.js';
import { prefixOf, type ModuleContext, type ShopModule } from './modules/module.js';
import { createNotificationsModule } from './modules/notifications/notifications.js';
import { createOrdersModule, type OrdersModule } from './modules/orders/orders.js';
import { createPaymentsModule } from './modules/payments/payments.js';
import { createProductPageModule } from './modules/product-page/product-page.js';
import { createRecommendationsModule } from './modules/recommendations/recommendations.js';
import { createUsersModule, type UsersModule } from './modules/users/users.js';

export interface Shop {
  readonly config: ShopConfig;
  /** Where this process listens, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly users: UsersModule;
  readonly inventory: InventoryModule;
  readonly orders: OrdersModule;
  readonly telemetry: Telemetry | undefined;
  /** Milliseconds from `startShop` to ready. */
  readonly startupMs: number;
  /** Drains requests, stops background work, closes stores (idempotent). */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Install SIGTERM/SIGINT handling (graceful shutdown, then exit). Default false (tests, embedding). */
  signals?: boolean;
}

let telemetryRegistered = false;

export async function startShop(config: ShopConfig, options: StartOptions = {}): Promise<Shop> {
  const began = performance.now();
  mkdirSync(config.dataDir, { recursive: true });

  let telemetry: Telemetry | undefined;
  let metrics: Metrics | undefined;
  if (config.telemetry.enabled) {
    telemetry = setupTelemetry({ serviceName: 'shop', exporter: 'memory', register: !telemetryRegistered, memory: { maxSpans: 5_000 } });
    telemetryRegistered = true;
    metrics = new Metrics({ defaultLabels: { service: 'shop' } });
    instrumentResilience(metrics);
    instrumentHttpClient(metrics);
  }

  const transport = await connectEmbeddedTransport({ url: `sqlite:${join(config.dataDir, 'bus.db')}` });
  const directory = new Directory(config.internalKey);
  let jwt: JwtVerifier | undefined;
  // The users module's JWKS is fetched over HTTP once its address is known (after listen), like any other module call.
  const verifier = {
    verify: (token: string) =>
      (jwt ??= new JwtVerifier({
        issuers: [{ issuer: config.auth.issuer, audience: config.auth.audience, jwksUri: `${directory.url('users')}/.well-known/jwks.json`, typ: 'at+jwt', algorithms: ['EdDSA'] }],
      })).verify(token),
  } as unknown as JwtVerifier;
  const ctx: ModuleContext = { config, directory, verifier, transport };

  const users = await createUsersModule(ctx);
  const inventory = await createInventoryModule(ctx);
  const orders = await createOrdersModule(ctx);
  const modules: ShopModule[] = [
    users,
    await createCatalogModule(ctx),
    inventory,
    await createPaymentsModule(ctx),
    orders,
    await createNotificationsModule(ctx),
    createRecommendationsModule(ctx),
    createProductPageModule(ctx),
  ];
  if (config.seed.demoUser) await users.ensureUser(config.seed.demoUsername, config.seed.demoPassword);

  const app = await createService({
    server: { logger: config.logLevel === 'silent' ? false : { level: config.logLevel } },
    kit: {
      accessLog: config.logLevel === 'debug' || config.logLevel === 'info',
      openapi: { info: { title: 'Bulwark shop', version: '0.1.0', description: 'The reference e-commerce system (monolith topology).' } },
      shutdown: options.signals === true ? { signals: ['SIGTERM', 'SIGINT'] } : { signals: [] },
    },
  });
  if (telemetry !== undefined && metrics !== undefined) {
    await app.register(fastifyTelemetry, { telemetry, metrics, accessLog: false, ignoreRoutes: ['/metrics', '/health/live', '/health/ready'] });
    await app.register(metricsRoute, { metrics });
    instrumentSagas(metrics, orders.sagas);
  }

  // Closers run in reverse order: modules (last mounted first), then the clients, the bus, telemetry.
  app.shutdown.addCloser('telemetry', () => telemetry?.shutdown() ?? Promise.resolve());
  app.shutdown.addCloser('bus', () => transport.close());
  app.shutdown.addCloser('clients', () => directory.close());
  for (const module of modules) {
    await app.register(async (child) => {
      await module.routes(child);
    }, { prefix: prefixOf(module.name) });
    if (module.ready !== undefined) app.readiness.add(module.name, () => module.ready?.() ?? Promise.resolve(), { timeoutMs: 1_000 });
    app.shutdown.addCloser(module.name, () => module.close());
  }
  app.get('/', { schema: { hide: true } }, () => ({
    name: 'Bulwark shop',
    topology: config.topology,
    modules: Object.fromEntries(MODULES.map((m) => [m, prefixOf(m)])),
    links: { products: '/api/catalog/products', productPage: '/api/product-page/{sku}', orders: '/api/orders', token: '/api/users/token', openapi: '/openapi.json', metrics: '/metrics', health: '/health/ready' },
  }));

  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  for (const m of MODULES) directory.set(m, config.modules[m].url || `${url}${prefixOf(m)}`);
  for (const module of modules) if (module.start !== undefined) await module.start();

  let closing: Promise<void> | undefined;
  return {
    config,
    url,
    app,
    users,
    inventory,
    orders,
    telemetry,
    startupMs: Math.round(performance.now() - began),
    close: () => (closing ??= app.close().then(() => undefined)),
  };
}
