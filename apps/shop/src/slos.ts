/**
 * The shop's SLOs, as data, and their wiring: the `@bulwark/telemetry/slo`
 * engine fed by in-process counts, its routes at `/slo`, its alerts as log
 * lines.
 *
 * | SLO | module | good / total | objective |
 * | --- | --- | --- | --- |
 * | `order-placement-availability` | orders | `POST /api/orders` answered below 500 / all answered | 99.9 % over 28 d |
 * | `checkout-completion` | orders | CreateOrder sagas completed or compensated within 10 s of placement / all that ended (stuck included) | 99 % over 28 d |
 * | `product-page-availability` | productPage | `GET /api/product-page/:sku` answered below 500 / all answered | 99.9 % over 28 d |
 *
 * Every SLO alerts with the SRE workbook's multiwindow, multi-burn-rate policy
 * (the engine's default): page at 14.4x over 1 h and 5 m or 6x over 6 h and
 * 30 m, ticket at 3x over 1 d and 2 h or 1x over 3 d and 6 h.
 *
 * Events, not metric reads: HTTP answers are counted by an `onResponse` hook
 * (one route template, both of its trailing-slash forms — the RED series
 * label them apart), saga outcomes by the orchestrator's events, so `GET /slo`
 * is current the moment a request is answered. The engine publishes the
 * counts as `bulwark_slo_events_total` / `bulwark_slo_good_events_total` on
 * `/metrics`, which the rules at `/slo/rules` read in Prometheus.
 *
 * A process hosts the SLOs of the modules it hosts: all three in the monolith,
 * the orders ones in the orders process and the product-page one in the
 * product-page process of the services topology.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { SagaEventSource } from '@bulwark/telemetry';
import { createSloEngine, prometheusRules, sloRoutes, type MetricRegistry, type SloAlert, type SloEngine, type SloRecorder, type SloSpecInput } from '@bulwark/telemetry/slo';
import type { ModuleName } from './config.js';
import { prefixOf } from './modules/module.js';

/** A saga that ends within this many seconds of its order being placed is a good checkout. */
export const CHECKOUT_THRESHOLD_SECONDS = 10;

/** What feeds an SLO: HTTP answers of one route, or the outcomes of one saga type. */
export type SloSource =
  | { kind: 'http'; method: 'GET' | 'POST'; module: ModuleName; path: string }
  | { kind: 'saga'; type: string; thresholdMs: number };

export interface ShopSlo {
  /** The module whose SLO this is: a process defines it only when it hosts the module. */
  module: ModuleName;
  source: SloSource;
  /** The engine's spec (its `service` is the process's telemetry service name). */
  spec: Omit<SloSpecInput, 'service'>;
}

/** The shop's SLOs (see the module comment). */
export const SHOP_SLOS: readonly ShopSlo[] = [
  {
    module: 'orders',
    source: { kind: 'http', method: 'POST', module: 'orders', path: '/' },
    spec: {
      name: 'order-placement-availability',
      description: 'POST /api/orders answered without a 5xx (4xx refusals are correct answers).',
      objective: 0.999,
      window: '28d',
      labels: { tier: 'critical', journey: 'checkout' },
    },
  },
  {
    module: 'orders',
    source: { kind: 'saga', type: 'CreateOrder', thresholdMs: CHECKOUT_THRESHOLD_SECONDS * 1_000 },
    spec: {
      name: 'checkout-completion',
      description: `Orders that reach a terminal state (CONFIRMED or CANCELLED: the CreateOrder saga completed or compensated) within ${CHECKOUT_THRESHOLD_SECONDS} s of placement, of all whose saga ended (a stuck saga is bad).`,
      objective: 0.99,
      window: '28d',
      labels: { tier: 'critical', journey: 'checkout' },
    },
  },
  {
    module: 'productPage',
    source: { kind: 'http', method: 'GET', module: 'productPage', path: '/:sku' },
    spec: {
      name: 'product-page-availability',
      description: 'GET /api/product-page/:sku answered without a 5xx (degraded pages, without recommendations, are good).',
      objective: 0.999,
      window: '28d',
      labels: { tier: 'high', journey: 'browse' },
    },
  },
];

/** The specs a process hosting `modules` evaluates, under its telemetry service name. */
export function slosFor(service: string, modules: Iterable<ModuleName>): SloSpecInput[] {
  const hosted = new Set(modules);
  return SHOP_SLOS.filter((s) => hosted.has(s.module)).map((s) => ({ ...s.spec, service }));
}

export interface ShopSloOptions {
  /** The process's telemetry service name (`shop`, `shop-orders`, ...). */
  service: string;
  modules: Iterable<ModuleName>;
  /** Where the engine publishes its event counters (the `/metrics` registry, a prom-client `Registry`). */
  registry?: MetricRegistry;
  /** Saga events of the orders module, when hosted here. */
  sagas?: SagaEventSource;
  /** Alert transitions are logged here (warn when firing, info when resolved). */
  log: Pick<FastifyInstance['log'], 'warn' | 'info'>;
}

export interface ShopSlos {
  readonly engine: SloEngine;
  readonly specs: readonly SloSpecInput[];
  /** Counts the answers of the SLOs' routes: call with the root instance (an `onResponse` hook). */
  countAnswers(app: FastifyInstance): void;
  /** `GET /slo` (every SLO and the firing alerts), the engine's `sloRoutes` (`/slo/slos`, `/slo/slos/:name`, `/slo/alerts`), `GET /slo/rules`. */
  readonly routes: FastifyPluginAsync;
  close(): Promise<void>;
}

/** The engine for the SLOs of the hosted modules, or undefined when none is hosted here. */
export function createShopSlos(options: ShopSloOptions): ShopSlos | undefined {
  const hosted = new Set(options.modules);
  const slos = SHOP_SLOS.filter((s) => hosted.has(s.module));
  if (slos.length === 0) return undefined;
  const specs = slos.map((s) => ({ ...s.spec, service: options.service }));
  const engine = createSloEngine({ slos: specs, ...(options.registry === undefined ? {} : { registry: options.registry }) });
  engine.on('alert', (alert: SloAlert) => {
    const fields = { slo: alert.slo, service: alert.service, severity: alert.severity, alertId: alert.id, state: alert.state, budgetRemaining: alert.budgetRemaining, conditions: alert.conditions };
    if (alert.state === 'firing') options.log.warn(fields, `SLO alert firing: ${alert.slo} (${alert.severity})`);
    else options.log.info(fields, `SLO alert resolved: ${alert.slo} (${alert.severity})`);
  });

  // HTTP SLOs by `<METHOD> <route template>`; a prefixed '/' route exists with and without its trailing slash.
  const byRoute = new Map<string, SloRecorder>();
  const offs: (() => void)[] = [];
  for (const { source, spec } of slos) {
    const recorder = engine.slo(spec.name);
    if (source.kind === 'http') {
      const url = `${prefixOf(source.module)}${source.path}`;
      for (const u of new Set([url, url.replace(/\/+$/, '') || '/'])) byRoute.set(`${source.method} ${u}`, recorder);
    } else if (options.sagas !== undefined) {
      const { type, thresholdMs } = source;
      const ended = (e: { type: string; durationMs: number }): void => {
        if (e.type === type) recorder.record(e.durationMs <= thresholdMs ? 1 : 0, 1);
      };
      offs.push(
        options.sagas.on('completed', ended),
        options.sagas.on('compensated', ended),
        options.sagas.on('stuck', (e) => {
          if (e.type === type) recorder.recordBad();
        }),
      );
    }
  }

  const countAnswers = (app: FastifyInstance): void => {
    app.addHook('onResponse', (request, reply, done) => {
      const url = request.routeOptions.url;
      if (url !== undefined) byRoute.get(`${request.method} ${url}`)?.record(reply.statusCode < 500 ? 1 : 0, 1);
      done();
    });
  };

  const routes: FastifyPluginAsync = async (app) => {
    app.get('/', { schema: { hide: true } }, () => ({
      slos: engine.statuses(),
      firing: engine.alerts(),
      links: { slos: '/slo/slos', slo: '/slo/slos/{name}', alerts: '/slo/alerts', rules: '/slo/rules' },
    }));
    app.get('/rules', { schema: { hide: true } }, (_request, reply) => reply.type('application/yaml; charset=utf-8').send(prometheusRules(specs)));
    await app.register(sloRoutes, { engine });
  };

  return {
    engine,
    specs,
    countAnswers,
    routes,
    async close() {
      for (const off of offs) off();
      await engine.close();
    },
  };
}
