/**
 * The composition root: builds the modules a process hosts, mounts each at
 * `/api/<module>` on one kit service, listens, then tells the directory where
 * every module is and starts their background work.
 *
 * Monolith (`startShop`): every module in this process, a SQLite file per
 * module under `dataDir`, the embedded bus (`<dataDir>/bus.db`). Modules
 * still call each other over HTTP through their clients and policies — to
 * this process's own listener on loopback — so the code path is the one the
 * services topology takes; only the addresses differ.
 *
 * Services (`hostModules` with one module, in a process of its own started by
 * `services/launcher.ts`): the same code, its store a PostgreSQL schema, its
 * events over NATS or RabbitMQ; the directory holds the other processes' URLs.
 *
 * Every process, in either topology, has its own fault injector
 * (`@bulwark/faults`, seeded by `faults.seed`, rules from `faults.file`):
 * inbound rules apply to its requests (a module is its `/api/<module>`
 * prefix), outbound rules to every client its modules make through the
 * directory, and `/admin/faults` (internal key) changes them at runtime.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { FaultInjector, readFaultFile } from '@bulwark/faults';
import { faultAdmin, inboundFaults } from '@bulwark/faults/fastify';
import { createService } from '@bulwark/http';
import { JwtVerifier } from '@bulwark/http/auth';
import {
  createLogger,
  fastifyTelemetry,
  instrumentFaults,
  instrumentHttpClient,
  instrumentResilience,
  instrumentSagas,
  Metrics,
  metricsRoute,
  setupTelemetry,
  traceSagas,
  type Telemetry,
} from '@bulwark/telemetry';
import type { SloEngine } from '@bulwark/telemetry/slo';
import { MODULES, type ModuleName, type ShopConfig } from './config.js';
import { Directory, internalOnly } from './platform.js';
import { createCatalogModule } from './modules/catalog/catalog.js';
import { createInventoryModule, type InventoryModule } from './modules/inventory/inventory.js';
import { prefixOf, type ModuleContext, type ShopModule } from './modules/module.js';
import { createNotificationsModule } from './modules/notifications/notifications.js';
import { createOrdersModule, type OrdersModule } from './modules/orders/orders.js';
import { createPaymentsModule } from './modules/payments/payments.js';
import { createProductPageModule } from './modules/product-page/product-page.js';
import { createRecommendationsModule } from './modules/recommendations/recommendations.js';
import { createUsersModule, type UsersModule } from './modules/users/users.js';
import { createShopSlos, type ShopSlos } from './slos.js';
import { traceRoutes } from './traces.js';
import { connectShopTransport } from './transports.js';

export interface Shop {
  readonly config: ShopConfig;
  /** Where this process listens, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly users: UsersModule;
  readonly inventory: InventoryModule;
  readonly orders: OrdersModule;
  /** This process's fault injector (rules also at `/admin/faults`). */
  readonly faults: FaultInjector;
  readonly telemetry: Telemetry | undefined;
  /** The SLO engine (`/slo`), when telemetry is enabled. */
  readonly slos: SloEngine | undefined;
  /** Milliseconds from `startShop` to ready. */
  readonly startupMs: number;
  /** Drains requests, stops background work, closes stores (idempotent). */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Install SIGTERM/SIGINT handling (graceful shutdown, then exit). Default false (tests, embedding). */
  signals?: boolean;
}

/** A process hosting some of the modules, listening, before its background work starts. */
export interface ModuleHost {
  readonly config: ShopConfig;
  /** Where this process listens (an origin, e.g. `http://127.0.0.1:3000`); module `m` is at `url + prefixOf(m)`. */
  readonly url: string;
  readonly app: FastifyInstance;
  /** The modules hosted here. */
  readonly modules: ReadonlyMap<ModuleName, ShopModule>;
  /** This process's fault injector (rules also at `/admin/faults`). */
  readonly faults: FaultInjector;
  readonly telemetry: Telemetry | undefined;
  /** The SLO engine of the hosted modules' SLOs (`/slo`), when telemetry is enabled and this process hosts one. */
  readonly slos: SloEngine | undefined;
  /**
   * Tells the directory every module's base URL (`http://host:port/api/<module>`),
   * then starts the hosted modules' background work (relays, consumers,
   * sweepers, the orchestrator). Call once.
   */
  connect(urls: Readonly<Record<ModuleName, string>>): Promise<void>;
  /** Drains requests, stops background work, closes stores and the transport (idempotent). */
  close(): Promise<void>;
}

export interface HostOptions extends StartOptions {
  /** The modules this process hosts, in mount order. Default: all of them. */
  modules?: readonly ModuleName[];
  /** Overrides `config.port`. */
  port?: number;
  /** Service name in telemetry. Default `shop`. */
  serviceName?: string;
}

let telemetryRegistered = false;

const FACTORIES: { [M in ModuleName]: (ctx: ModuleContext) => ShopModule | Promise<ShopModule> } = {
  users: createUsersModule,
  catalog: createCatalogModule,
  inventory: createInventoryModule,
  payments: createPaymentsModule,
  orders: createOrdersModule,
  notifications: createNotificationsModule,
  recommendations: createRecommendationsModule,
  productPage: createProductPageModule,
};

/** Builds the given modules on one kit service and listens; background work waits for `connect`. */
export async function hostModules(config: ShopConfig, options: HostOptions = {}): Promise<ModuleHost> {
  const names = options.modules ?? MODULES;
  const serviceName = options.serviceName ?? 'shop';
  if (config.topology === 'monolith') mkdirSync(config.dataDir, { recursive: true });

  let telemetry: Telemetry | undefined;
  let metrics: Metrics | undefined;
  if (config.telemetry.enabled) {
    telemetry = setupTelemetry({ serviceName, exporter: 'memory', register: !telemetryRegistered, memory: { maxSpans: 5_000 } });
    telemetryRegistered = true;
    metrics = new Metrics({ defaultLabels: { service: serviceName } });
    instrumentResilience(metrics);
    instrumentHttpClient(metrics);
  }

  // Rules from the file (already checked by loadConfig) are in force before the first request.
  const faults = new FaultInjector({ seed: config.faults.seed, modules: MODULES });
  if (config.faults.file !== '') faults.replace(readFaultFile(config.faults.file, { modules: MODULES }));
  if (metrics !== undefined) instrumentFaults(metrics, faults);

  const transport = await connectShopTransport(config, serviceName);
  const directory = new Directory(config.internalKey, { faults });
  let jwt: JwtVerifier | undefined;
  // The users module's JWKS is fetched over HTTP once its address is known (after listen), like any other module call.
  const verifier = {
    verify: (token: string) =>
      (jwt ??= new JwtVerifier({
        issuers: [{ issuer: config.auth.issuer, audience: config.auth.audience, jwksUri: `${directory.url('users')}/.well-known/jwks.json`, typ: 'at+jwt', algorithms: ['EdDSA'] }],
      })).verify(token),
  } as unknown as JwtVerifier;
  const ctx: ModuleContext = { config, directory, verifier, transport };

  const hosted = new Map<ModuleName, ShopModule>();
  try {
    // Each module gets its own view of the directory: its clients are its outgoing calls (outbound fault rules match on it).
    for (const name of names) hosted.set(name, await FACTORIES[name]({ ...ctx, directory: directory.forModule(name) }));
    const users = hosted.get('users') as UsersModule | undefined;
    if (users !== undefined && config.seed.demoUser) await users.ensureUser(config.seed.demoUsername, config.seed.demoPassword);
  } catch (error) {
    await Promise.allSettled([...hosted.values()].map((m) => m.close()));
    await transport.close().catch(() => undefined);
    throw error;
  }
  const modules = [...hosted.values()];

  // With telemetry, every log line written inside a span carries its trace_id and span_id.
  const logger =
    config.logLevel === 'silent' ? { logger: false } : telemetry === undefined ? { logger: { level: config.logLevel } } : { loggerInstance: createLogger({ service: serviceName, version: '0.1.0', level: config.logLevel }) };
  const app = await createService({
    server: logger,
    kit: {
      accessLog: config.logLevel === 'debug' || config.logLevel === 'info',
      openapi: { info: { title: names.length === MODULES.length ? 'Bulwark shop' : `Bulwark shop: ${names.join(', ')}`, version: '0.1.0', description: `The reference e-commerce system (${config.topology} topology).` } },
      shutdown: options.signals === true ? { signals: ['SIGTERM', 'SIGINT'] } : { signals: [] },
    },
  });
  let slos: ShopSlos | undefined;
  if (telemetry !== undefined && metrics !== undefined) {
    // Reading traces and SLOs makes no traces and no RED series of its own.
    const readers = ['/traces', '/traces/', '/traces/:traceId', '/traces/saga/:sagaId', '/slo', '/slo/', '/slo/rules', '/slo/slos', '/slo/slos/:name', '/slo/alerts', '/admin/faults', '/admin/faults/', '/admin/faults/:id'];
    await app.register(fastifyTelemetry, { telemetry, metrics, accessLog: false, ignoreRoutes: ['/metrics', '/health/live', '/health/ready', ...readers] });
    await app.register(metricsRoute, { metrics });
    const orders = hosted.get('orders') as OrdersModule | undefined;
    if (orders !== undefined) {
      instrumentSagas(metrics, orders.sagas);
      traceSagas(telemetry.tracer, orders.sagas);
    }
    slos = createShopSlos({ service: serviceName, modules: names, registry: metrics.registry, log: app.log, ...(orders === undefined ? {} : { sagas: orders.sagas }) });
    if (slos !== undefined) {
      slos.countAnswers(app);
      await app.register(slos.routes, { prefix: '/slo' });
    }
    const store = telemetry.spans;
    if (store !== undefined) await app.register(traceRoutes, { prefix: '/traces', store, flush: () => telemetry.forceFlush(), internalKey: config.internalKey });
  }

  // Faults after telemetry (an injected answer is counted like a real one), before the modules' routes.
  // Operator surfaces are never faulted: an experiment must not blind the people watching it.
  await app.register(inboundFaults, { injector: faults, modules: Object.fromEntries(MODULES.map((m) => [m, prefixOf(m)])), exempt: ['/metrics', '/traces', '/slo'] });
  if (config.faults.admin) await app.register(faultAdmin, { prefix: '/admin/faults', injector: faults, auth: internalOnly(config.internalKey) });

  // A process shutting down stops injecting: held requests are reset and held calls fail at once, so nothing faulted holds up the drain.
  app.addHook('preClose', (done) => {
    faults.close();
    done();
  });

  // Closers run in reverse order: modules (last mounted first), then the clients, the bus, the SLO engine, telemetry.
  app.shutdown.addCloser('telemetry', () => telemetry?.shutdown() ?? Promise.resolve());
  app.shutdown.addCloser('slos', () => slos?.close() ?? Promise.resolve());
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
    modules: Object.fromEntries(names.map((m) => [m, prefixOf(m)])),
    links: {
      products: '/api/catalog/products',
      productPage: '/api/product-page/{sku}',
      orders: '/api/orders',
      token: '/api/users/token',
      openapi: '/openapi.json',
      health: '/health/ready',
      ...(telemetry === undefined ? {} : { metrics: '/metrics', traces: '/traces (internal key)' }),
      ...(slos === undefined ? {} : { slos: '/slo', sloRules: '/slo/rules' }),
      ...(config.faults.admin ? { faults: '/admin/faults (internal key)' } : {}),
    },
  }));

  try {
    await app.listen({ host: config.host, port: options.port ?? config.port });
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  const port = (app.server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let connected = false;
  let closing: Promise<void> | undefined;
  return {
    config,
    url,
    app,
    modules: hosted,
    faults,
    telemetry,
    slos: slos?.engine,
    async connect(urls) {
      if (connected) throw new Error('connect() was already called');
      connected = true;
      for (const m of MODULES) directory.set(m, urls[m]);
      for (const module of modules) if (module.start !== undefined) await module.start();
    },
    close: () => (closing ??= app.close().then(() => undefined)),
  };
}

/** The monolith: every module in this process, reaching each other on this process's own listener. */
export async function startShop(config: ShopConfig, options: StartOptions = {}): Promise<Shop> {
  const began = performance.now();
  const host = await hostModules(config, options);
  await host.connect(Object.fromEntries(MODULES.map((m) => [m, config.modules[m].url || `${host.url}${prefixOf(m)}`])) as Record<ModuleName, string>);
  return {
    config,
    url: host.url,
    app: host.app,
    users: host.modules.get('users') as UsersModule,
    inventory: host.modules.get('inventory') as InventoryModule,
    orders: host.modules.get('orders') as OrdersModule,
    faults: host.faults,
    telemetry: host.telemetry,
    slos: host.slos,
    startupMs: Math.round(performance.now() - began),
    close: () => host.close(),
  };
}
