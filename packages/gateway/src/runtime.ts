/**
 * The gateway: the front-door `node:http` server, the route table built from
 * a validated configuration, and `reload()`, which builds a whole new table
 * before swapping it in (a failed reload keeps the old one). Requests in
 * flight finish on the table they started with; upstream services and
 * connection pools only the old table used are closed once it drains.
 */
import { channel } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { JwtVerifier, type IssuerConfig } from '@bulwark/http/auth';
import {
  circuitBreaker,
  MemoryRateLimitStore,
  pipeline,
  retry,
  RetryBudget,
  type CircuitBreakerPolicy,
  type CircuitBreakerSnapshot,
  type Pipeline,
  type RateLimitRule,
  type RateLimitStore,
  type RetryBudgetSnapshot,
} from '@bulwark/resilience';
import { createTrafficSplit, createUpstream, type TrafficSplit, type UpstreamEvent, type UpstreamOptions } from './balancing/index.js';
import type { InstanceStatus, UpstreamService } from './balancing/types.js';
import type { DiscoverySource } from './discovery/types.js';
import { GatewayConfigError, loadConfigFile, validateConfig, type GatewayConfig, type UpstreamConfig, type ValidConfig, type ValidRoute } from './config.js';
import { isRetryableUpstreamFailure, isUpstreamFailure } from './errors.js';
import { UpstreamPool } from './h1/pool.js';
import { handleRequest, type Exchange } from './proxy.js';
import { RouteTable } from './routing.js';
import { sendProblemOnSocket } from './problems.js';
import { VerifiedTokenCache, type TokenCacheStats } from './token-cache.js';
import { startAdmin } from './admin.js';

/** Diagnostics channel of finished requests: `GatewayRequestEvent`. Free when nobody subscribes. */
export const GATEWAY_REQUEST_CHANNEL = 'bulwark:gateway:request';
/** Diagnostics channel of upstream events (ejections, health changes, membership): `UpstreamEvent`. */
export const GATEWAY_UPSTREAM_CHANNEL = 'bulwark:gateway:upstream';
/** Diagnostics channel of configuration events: `GatewayConfigEvent`. */
export const GATEWAY_CONFIG_CHANNEL = 'bulwark:gateway:config';

export interface GatewayRequestEvent {
  /** Route name, or `undefined` when none matched. */
  readonly route: string | undefined;
  readonly upstream: string | undefined;
  /** Id of the instance of the last attempt. */
  readonly instance: string | undefined;
  readonly method: string;
  readonly status: number;
  readonly durationMs: number;
  readonly attempts: number;
  /** False when the client went away before the response finished. */
  readonly completed: boolean;
}

export type GatewayConfigEvent = { readonly type: 'loaded'; readonly version: number; readonly routes: number } | { readonly type: 'reload-failed'; readonly version: number; readonly issues: readonly string[] };

const requestChannel = channel(GATEWAY_REQUEST_CHANNEL);
const upstreamChannel = channel(GATEWAY_UPSTREAM_CHANNEL);
const configChannel = channel(GATEWAY_CONFIG_CHANNEL);

export interface RuntimeRoute {
  readonly name: string;
  readonly config: ValidRoute;
  readonly upstream: UpstreamService;
  /** The canary split (`createTrafficSplit`) and where the request's sticky key comes from. */
  readonly canary: { split: TrafficSplit; stickyKind: 'sub' | 'header' | 'cookie' | undefined; stickyName: string } | undefined;
  readonly policy: Pipeline | undefined;
  readonly breaker: CircuitBreakerPolicy | undefined;
  readonly budget: RetryBudget | undefined;
  readonly limiter: { rule: RateLimitRule; store: RateLimitStore; key: 'sub' | 'ip' | 'header'; header: string | undefined; prefix: string; onStoreError: 'open' | 'closed'; headers: boolean } | undefined;
  readonly auth: { scopes: readonly string[]; roles: readonly string[] } | undefined;
  readonly rewrite: ((path: string) => string) | undefined;
  readonly preserveHost: boolean;
  readonly maxResponseBytes: number;
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  /** `sub`, or a header name. */
  readonly tenant: string | undefined;
}

interface UpstreamEntry {
  key: string;
  service: UpstreamService;
  spec: UpstreamConfig;
}

export interface Table {
  readonly version: number;
  readonly config: ValidConfig;
  readonly routes: RouteTable<RuntimeRoute>;
  readonly list: readonly RuntimeRoute[];
  readonly upstreams: ReadonlyMap<string, UpstreamEntry>;
  readonly tokens: VerifiedTokenCache | undefined;
  readonly authKey: string;
  inflight: number;
}

export interface GatewayCounters {
  requests: number;
  responses2xx: number;
  responses3xx: number;
  responses4xx: number;
  responses5xx: number;
  /** Client went away before the response finished. */
  aborted: number;
  rejectedBadRequest: number;
  rejectedNotFound: number;
  rejectedAuth: number;
  rejectedRateLimit: number;
  rateLimitStoreErrors: number;
  breakerRejections: number;
  upstreamErrors: number;
  reloads: number;
  reloadFailures: number;
}

export interface GatewayOptions {
  /** The configuration as an object (validated). Give this or `configPath`. */
  config?: unknown;
  /** A JSON configuration file, read at start-up and on every `reload()` without argument (and SIGHUP). */
  configPath?: string;
  /** Overrides `listen.port` / `listen.host`. */
  port?: number;
  host?: string;
  /** Overrides `admin.port` / `admin.host`. */
  adminPort?: number;
  adminHost?: string;
  /** The store for routes with `rateLimit.store: "redis"` (e.g. `new RedisRateLimitStore({ redis })` from `@bulwark/http/redis`). */
  redisStore?: RateLimitStore;
  /** The store for the others. Default: a `MemoryRateLimitStore` of 100 000 keys. */
  memoryStore?: RateLimitStore;
  /** Discovery sources by upstream name (a registry); upstreams without one use their static `instances`. */
  discovery?: Readonly<Record<string, DiscoverySource>>;
  /** Builds an upstream service. Default: `createUpstream` of the balancing layer. */
  createUpstream?: (options: UpstreamOptions) => UpstreamService;
  /** Reload on SIGHUP. Default: true when `configPath` is given. */
  reloadOnSighup?: boolean;
  /** Errors that have nowhere else to go (a failed SIGHUP reload, upstream layer errors). Default: `process.emitWarning`. */
  onError?: (error: unknown) => void;
}

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class Runtime {
  table!: Table;
  closing = false;
  readonly trustForwarded: boolean;
  readonly counters: GatewayCounters = {
    requests: 0,
    responses2xx: 0,
    responses3xx: 0,
    responses4xx: 0,
    responses5xx: 0,
    aborted: 0,
    rejectedBadRequest: 0,
    rejectedNotFound: 0,
    rejectedAuth: 0,
    rejectedRateLimit: 0,
    rateLimitStoreErrors: 0,
    breakerRejections: 0,
    upstreamErrors: 0,
    reloads: 0,
    reloadFailures: 0,
  };
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly poolOptions = new Map<string, { connections: number; maxHeaderSize: number }>();
  private readonly breakers = new Map<string, CircuitBreakerPolicy>();
  private readonly budgets = new Map<string, RetryBudget>();
  private readonly memoryStore: RateLimitStore;
  private server: Server | undefined;
  private admin: Server | undefined;
  private readonly retired = new Set<Table>();
  private version = 0;
  private reloading: Promise<void> | undefined;
  private readonly onSighup = (): void => {
    this.reload().catch((error: unknown) => this.onError(error));
  };

  constructor(
    private readonly options: GatewayOptions,
    initial: ValidConfig,
  ) {
    this.memoryStore = options.memoryStore ?? new MemoryRateLimitStore({ maxKeys: 100_000 });
    this.trustForwarded = initial.raw.trustForwarded === true;
  }

  onError(error: unknown): void {
    if (this.options.onError !== undefined) this.options.onError(error);
    else process.emitWarning(error instanceof Error ? error : new Error(String(error)));
  }

  poolFor(origin: string): UpstreamPool {
    let pool = this.pools.get(origin);
    if (pool === undefined) {
      const o = this.poolOptions.get(origin) ?? { connections: 128, maxHeaderSize: 16 * 1024 };
      pool = new UpstreamPool(origin, { connections: o.connections, maxHeaderSize: o.maxHeaderSize, keepAliveTimeoutMs: 4_000 });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Builds a table from a validated config. On failure, everything it created is closed and the error names the part. */
  async build(config: ValidConfig, previous: Table | undefined): Promise<Table> {
    const issues: string[] = [];
    const created: UpstreamService[] = [];
    const upstreams = new Map<string, UpstreamEntry>();
    const make = this.options.createUpstream ?? createUpstream;
    for (const [name, spec] of Object.entries(config.raw.upstreams)) {
      const discovery = this.options.discovery?.[name];
      const key = JSON.stringify(spec) + (discovery === undefined ? '' : '+discovery');
      const old = previous?.upstreams.get(name);
      if (old !== undefined && old.key === key) {
        upstreams.set(name, old);
        continue;
      }
      if (spec.instances === undefined && discovery === undefined) {
        issues.push(`upstreams.${name}: needs instances or a discovery source`);
        continue;
      }
      const { connections, maxHeaderSize, ...rest } = spec;
      try {
        const service = make({
          ...(rest as Omit<UpstreamOptions, 'name'>),
          name,
          ...(discovery === undefined ? {} : { discovery, instances: undefined }),
          onEvent: (event: UpstreamEvent) => {
            if (upstreamChannel.hasSubscribers) upstreamChannel.publish(event);
          },
          onError: (error: unknown) => this.onError(error),
        });
        created.push(service);
        upstreams.set(name, { key, service, spec });
        for (const inst of spec.instances ?? []) {
          const url = typeof inst === 'string' ? inst : inst.url;
          if (!this.poolOptions.has(url)) this.poolOptions.set(url, { connections: connections ?? 128, maxHeaderSize: maxHeaderSize ?? 16 * 1024 });
        }
      } catch (error) {
        issues.push(`upstreams.${name}: ${(error as Error).message}`);
      }
    }
    let tokens: VerifiedTokenCache | undefined;
    const authKey = JSON.stringify(config.raw.auth ?? null);
    if (config.raw.auth !== undefined) {
      if (previous?.tokens !== undefined && previous.authKey === authKey) tokens = previous.tokens;
      else {
        try {
          const verifier = new JwtVerifier({
            issuers: config.raw.auth.issuers as unknown as IssuerConfig[],
            ...(config.raw.auth.clockSkewSec === undefined ? {} : { clockSkewSec: config.raw.auth.clockSkewSec }),
          });
          tokens = new VerifiedTokenCache(verifier, config.raw.auth.cacheSize ?? 10_000);
        } catch (error) {
          issues.push(`auth: ${(error as Error).message}`);
        }
      }
    }
    const maxResponse = config.raw.limits?.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const list: RuntimeRoute[] = [];
    config.routes.forEach((r, i) => {
      const where = `routes[${i}] (${r.name})`;
      const upstream = upstreams.get(r.upstream)?.service;
      if (upstream === undefined) return; // reported above
      try {
        list.push(this.buildRoute(r, upstream, upstreams, maxResponse, where, issues));
      } catch (error) {
        issues.push(`${where}: ${(error as Error).message}`);
      }
    });
    if (issues.length > 0) {
      await Promise.allSettled(created.map((s) => s.close()));
      throw new GatewayConfigError(issues);
    }
    await Promise.all(created.map((s) => (s as { ready?: () => Promise<void> }).ready?.() ?? Promise.resolve()));
    return {
      version: ++this.version,
      config,
      routes: new RouteTable(list.map((route) => ({ match: route.config.match, target: route }))),
      list,
      upstreams,
      tokens,
      authKey,
      inflight: 0,
    };
  }

  private buildRoute(r: ValidRoute, upstream: UpstreamService, upstreams: Map<string, UpstreamEntry>, maxResponse: number, where: string, issues: string[]): RuntimeRoute {
    let canary: RuntimeRoute['canary'];
    if (r.canary !== undefined) {
      const c = upstreams.get(r.canary.upstream)?.service;
      if (c === undefined) issues.push(`${where}.canary.upstream: unknown upstream ${JSON.stringify(r.canary.upstream)}`);
      else {
        const header = r.canary.header === false ? undefined : (r.canary.header ?? 'x-canary');
        const sticky = r.canary.sticky;
        const colon = sticky === undefined ? -1 : sticky.indexOf(':');
        canary = {
          // `X-Canary: true` forces the canary, any other value of the header the stable side; a
          // sticky key hashes (salted with the canary's name) to a bucket; otherwise a random draw.
          split: createTrafficSplit({ stable: upstream, canary: c, weight: r.canary.weight, header: header === undefined ? undefined : { name: header, value: 'true' } }),
          stickyKind: sticky === undefined ? undefined : sticky === 'sub' ? 'sub' : (sticky.slice(0, colon) as 'header' | 'cookie'),
          stickyName: colon === -1 ? '' : sticky!.slice(colon + 1),
        };
      }
    }
    let breaker: CircuitBreakerPolicy | undefined;
    if (r.breaker !== undefined && r.breaker !== false) {
      const b = r.breaker;
      const key = `${r.name}|${JSON.stringify(b)}`;
      breaker = this.breakers.get(key);
      if (breaker === undefined) {
        breaker = circuitBreaker({
          name: `gateway:${r.name}`,
          isFailure: isUpstreamFailure,
          ...(b.failureRateThreshold === undefined ? {} : { failureRateThreshold: b.failureRateThreshold }),
          ...(b.minimumCalls === undefined ? {} : { minimumCalls: b.minimumCalls }),
          ...(b.windowSize === undefined ? {} : { window: { type: 'count' as const, size: b.windowSize } }),
          ...(b.openDurationMs === undefined ? {} : { openDuration: { baseMs: b.openDurationMs } }),
          ...(b.halfOpenCalls === undefined ? {} : { halfOpenCalls: b.halfOpenCalls }),
          ...(b.slowCallDurationMs === undefined ? {} : { slowCallDurationMs: b.slowCallDurationMs }),
        });
        this.breakers.set(key, breaker);
      }
    }
    let budget: RetryBudget | undefined;
    let retryPolicy;
    const rc = r.retry === undefined ? {} : r.retry;
    if (rc !== false && (rc.maxAttempts ?? 2) > 1) {
      const key = `${r.name}|${JSON.stringify(rc.budget ?? {})}`;
      budget = this.budgets.get(key);
      if (budget === undefined) {
        budget = new RetryBudget({ ...(rc.budget ?? {}) });
        this.budgets.set(key, budget);
      }
      const backoffMs = rc.backoffMs ?? 0;
      retryPolicy = retry({
        name: `gateway:${r.name}`,
        maxAttempts: rc.maxAttempts ?? 2,
        budget,
        backoff: { kind: 'constant', baseMs: backoffMs, capMs: backoffMs, jitter: backoffMs === 0 ? 'none' : 'full' },
        retryOn: isRetryableUpstreamFailure,
        honourRetryAfter: false,
      });
    }
    const policies = [retryPolicy, breaker].filter((p) => p !== undefined);
    const policy = policies.length === 0 ? undefined : pipeline(...policies);
    let limiter: RuntimeRoute['limiter'];
    if (r.rateLimit !== undefined && r.rule !== undefined) {
      const store = r.rateLimit.store === 'redis' ? this.options.redisStore : this.memoryStore;
      if (store === undefined) issues.push(`${where}.rateLimit.store: "redis" needs the gateway's redisStore option`);
      else {
        const k = r.rateLimit.key ?? 'sub';
        limiter = {
          rule: r.rule,
          store,
          key: k === 'sub' || k === 'ip' ? k : 'header',
          header: k.startsWith('header:') ? k.slice(7) : undefined,
          prefix: `gw:${r.name}:`,
          onStoreError: r.rateLimit.onStoreError ?? 'open',
          headers: r.rateLimit.headers !== false,
        };
      }
    }
    const auth = r.auth === undefined || r.auth === false ? undefined : r.auth === true ? { scopes: [], roles: [] } : { scopes: r.auth.scopes ?? [], roles: r.auth.roles ?? [] };
    let rewrite: RuntimeRoute['rewrite'];
    if (r.rewrite !== undefined && (r.rewrite.stripPrefix !== undefined || r.rewrite.addPrefix !== undefined)) {
      const strip = r.rewrite.stripPrefix ?? '';
      const add = r.rewrite.addPrefix ?? '';
      rewrite = (path) => {
        let rest = strip !== '' && path.startsWith(strip) ? path.slice(strip.length) : path;
        if (!rest.startsWith('/')) rest = '/' + rest;
        const out = add + rest;
        return out.length > 1 && out.endsWith('/') && !path.endsWith('/') ? out.slice(0, -1) : out;
      };
    }
    return {
      name: r.name,
      config: r,
      upstream,
      canary,
      policy,
      breaker,
      budget,
      limiter,
      auth,
      rewrite,
      preserveHost: r.preserveHost !== false,
      maxResponseBytes: r.maxResponseBytes ?? maxResponse,
      timeoutMs: r.timeoutMs,
      idleTimeoutMs: r.idleTimeoutMs,
      tenant: r.tenant === undefined ? undefined : r.tenant === 'sub' ? 'sub' : r.tenant.slice(7),
    };
  }

  /**
   * Re-reads the configuration (the file, or `config` when given), builds a
   * new table and swaps it in. Throws `GatewayConfigError` naming each
   * problem; the running table is then unchanged. Reloads run one at a time.
   */
  reload(config?: unknown): Promise<void> {
    const run = async (): Promise<void> => {
      const version = this.version;
      try {
        const valid = config !== undefined ? validateConfig(config) : this.options.configPath !== undefined ? await loadConfigFile(this.options.configPath) : validateConfig(this.table.config.raw);
        const next = await this.build(valid, this.table);
        const old = this.table;
        this.table = next;
        this.counters.reloads++;
        if (configChannel.hasSubscribers) configChannel.publish({ type: 'loaded', version: next.version, routes: next.list.length } satisfies GatewayConfigEvent);
        this.retire(old);
      } catch (error) {
        this.counters.reloadFailures++;
        const issues = error instanceof GatewayConfigError ? error.issues : [String((error as Error).message)];
        if (configChannel.hasSubscribers) configChannel.publish({ type: 'reload-failed', version, issues } satisfies GatewayConfigEvent);
        throw error;
      }
    };
    const next = (this.reloading ?? Promise.resolve()).then(run, run);
    this.reloading = next.catch(() => undefined);
    return next;
  }

  /** Closes what only `old` used, once its in-flight requests are done. */
  private retire(old: Table): void {
    this.retired.add(old);
    const check = (): void => {
      if (old.inflight > 0 && !this.closing) {
        setTimeout(check, 50).unref();
        return;
      }
      this.retired.delete(old);
      const live = new Set<UpstreamService>();
      for (const t of [this.table, ...this.retired]) for (const e of t.upstreams.values()) live.add(e.service);
      for (const e of old.upstreams.values()) if (!live.has(e.service)) e.service.close().catch((error: unknown) => this.onError(error));
      const origins = new Set<string>();
      for (const t of [this.table, ...this.retired]) for (const e of t.upstreams.values()) for (const s of e.service.status()) origins.add(s.url);
      for (const [origin, pool] of this.pools) {
        if (!origins.has(origin)) {
          this.pools.delete(origin);
          pool.close().catch((error: unknown) => this.onError(error));
        }
      }
    };
    check();
  }

  finished(table: Table, ex: Exchange | undefined, res: ServerResponse, req: IncomingMessage): void {
    const status = res.statusCode;
    const c = this.counters;
    if (!res.writableFinished) c.aborted++;
    else if (status < 300) c.responses2xx++;
    else if (status < 400) c.responses3xx++;
    else if (status < 500) c.responses4xx++;
    else c.responses5xx++;
    if (requestChannel.hasSubscribers) {
      requestChannel.publish({
        route: ex?.route.name,
        upstream: ex?.service?.name,
        instance: ex?.instance,
        method: req.method ?? '',
        status,
        durationMs: ex === undefined ? 0 : performance.now() - ex.start,
        attempts: ex?.attempts ?? 0,
        completed: res.writableFinished,
      } satisfies GatewayRequestEvent);
    }
    void table;
  }

  async listen(): Promise<{ port: number; adminPort: number | undefined }> {
    const cfg = this.table.config.raw;
    const limits = cfg.limits ?? {};
    const server = createServer(
      {
        maxHeaderSize: limits.maxHeaderSize ?? 16 * 1024,
        requestTimeout: limits.requestTimeoutMs ?? 300_000,
        headersTimeout: limits.headersTimeoutMs ?? 10_000,
        keepAliveTimeout: limits.keepAliveTimeoutMs ?? 5_000,
        requireHostHeader: true,
      },
      (req, res) => handleRequest(this, req, res),
    );
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
      this.counters.rejectedBadRequest++;
      if (error.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      if (error.code === 'HPE_HEADER_OVERFLOW') sendProblemOnSocket(socket, 'gateway-header-too-large');
      else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') sendProblemOnSocket(socket, 'gateway-request-timeout');
      else sendProblemOnSocket(socket, 'gateway-bad-request', 'the HTTP parser refused the request');
    });
    // WebSocket and other upgrades are not proxied: refuse them rather than leave the socket hanging.
    server.on('upgrade', (_req: IncomingMessage, socket: Socket) => sendProblemOnSocket(socket, 'gateway-bad-request', 'protocol upgrades are not supported'));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? cfg.listen?.port ?? 0, this.options.host ?? cfg.listen?.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    let adminPort: number | undefined;
    if (cfg.admin !== undefined || this.options.adminPort !== undefined) {
      this.admin = await startAdmin(this, this.options.adminPort ?? cfg.admin?.port ?? 0, this.options.adminHost ?? cfg.admin?.host ?? '127.0.0.1', cfg.admin?.scope ?? 'gateway:admin');
      adminPort = (this.admin.address() as AddressInfo).port;
    }
    if (this.options.reloadOnSighup ?? this.options.configPath !== undefined) process.on('SIGHUP', this.onSighup);
    return { port: (server.address() as AddressInfo).port, adminPort };
  }

  /** Stops accepting, lets in-flight requests finish (up to `drainMs`), then closes pools and upstreams. */
  async close(drainMs = 10_000): Promise<void> {
    this.closing = true;
    process.off('SIGHUP', this.onSighup);
    const servers = [this.server, this.admin].filter((s): s is Server => s !== undefined);
    const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const s of servers) s.closeIdleConnections();
    const deadline = Date.now() + drainMs;
    while ((this.table.inflight > 0 || [...this.retired].some((t) => t.inflight > 0)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of servers) s.closeAllConnections();
    await closed;
    const services = new Set<UpstreamService>();
    for (const t of [this.table, ...this.retired]) for (const e of t.upstreams.values()) services.add(e.service);
    await Promise.allSettled([...services].map((s) => s.close()));
    await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }

  // ---- admin views ----

  routesView(): unknown[] {
    return this.table.list.map((r) => ({
      name: r.name,
      match: r.config.match,
      upstream: r.config.upstream,
      canary: r.config.canary,
      rewrite: r.config.rewrite,
      timeoutMs: r.timeoutMs,
      retry: r.config.retry ?? { maxAttempts: 2 },
      breaker: r.config.breaker ?? false,
      rateLimit: r.config.rateLimit,
      auth: r.config.auth ?? false,
    }));
  }

  upstreamsView(): Record<string, InstanceStatus[]> {
    const out: Record<string, InstanceStatus[]> = {};
    for (const [name, e] of this.table.upstreams) out[name] = e.service.status();
    return out;
  }

  breakersView(): Record<string, CircuitBreakerSnapshot> {
    const out: Record<string, CircuitBreakerSnapshot> = {};
    for (const r of this.table.list) if (r.breaker !== undefined) out[r.name] = r.breaker.snapshot();
    return out;
  }

  statsView(): { version: number; inflight: number; counters: GatewayCounters; tokens: TokenCacheStats | undefined; retryBudgets: Record<string, RetryBudgetSnapshot> } {
    const retryBudgets: Record<string, RetryBudgetSnapshot> = {};
    for (const r of this.table.list) if (r.budget !== undefined) retryBudgets[r.name] = r.budget.snapshot();
    return { version: this.table.version, inflight: this.table.inflight, counters: { ...this.counters }, tokens: this.table.tokens?.stats(), retryBudgets };
  }
}

/** A running gateway. */
export interface Gateway {
  /** Starts the front-door listener (and the admin one, when configured); resolves with their ports. */
  listen(): Promise<{ port: number; adminPort: number | undefined }>;
  /** Rebuilds from the file (or `config`); throws `GatewayConfigError` and keeps the old table on failure. */
  reload(config?: unknown): Promise<void>;
  /** Graceful stop: no new connections, in-flight requests finish (up to `drainMs`). */
  close(drainMs?: number): Promise<void>;
  /** Counters, token cache and retry budgets. */
  stats(): ReturnType<Runtime['statsView']>;
  routes(): unknown[];
  upstreams(): Record<string, InstanceStatus[]>;
  breakers(): Record<string, CircuitBreakerSnapshot>;
  /** The configuration in force. */
  config(): GatewayConfig;
}

/** Validates the configuration and builds the first table; throws `GatewayConfigError` naming each problem. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  let valid: ValidConfig;
  if (options.configPath !== undefined) valid = await loadConfigFile(options.configPath);
  else if (options.config !== undefined) valid = validateConfig(options.config);
  else throw new GatewayConfigError(['(options): give config or configPath']);
  const runtime = new Runtime(options, valid);
  runtime.table = await runtime.build(valid, undefined);
  return {
    listen: () => runtime.listen(),
    reload: (config?: unknown) => runtime.reload(config),
    close: (drainMs?: number) => runtime.close(drainMs),
    stats: () => runtime.statsView(),
    routes: () => runtime.routesView(),
    upstreams: () => runtime.upstreamsView(),
    breakers: () => runtime.breakersView(),
    config: () => runtime.table.config.raw,
  };
}
