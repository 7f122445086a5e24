/**
 * The shop's one typed configuration: defaults, then an optional JSON file
 * (`SHOP_CONFIG=./shop.json`), then environment variables, validated key by
 * key. A bad value stops start-up with `ConfigError` naming the key.
 *
 * Every leaf has an environment variable: `SHOP_` + its path in upper snake
 * case, levels joined by `__` — `port` is `SHOP_PORT`, `payments.declineRate`
 * is `SHOP_PAYMENTS__DECLINE_RATE`, `modules.inventory.url` is
 * `SHOP_MODULES__INVENTORY__URL`.
 *
 * Topology is configuration: `monolith` hosts every module in one process
 * (SQLite file per module under `dataDir`, the embedded bus, module calls over
 * loopback through their clients). `services` runs one process per module
 * behind the gateway (`port` is then the gateway's): each module's store is a
 * PostgreSQL schema named after it on `services.db` (or `modules.<name>.db`),
 * events go over NATS JetStream or RabbitMQ (`services.transport`), a module
 * listens on `modules.<name>.url` (default: a free port on `host`).
 *
 * Fault injection (`faults`, in every process of either topology): rules are
 * seeded by `faults.seed`, loaded at start from `faults.file` (a JSON rules
 * file, checked here: a bad one stops start-up naming the field) and changed
 * at runtime through `/admin/faults` (internal key) unless `faults.admin` is
 * false.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FaultConfigError, readFaultFile } from '@bulwark/faults';

export const MODULES = ['users', 'catalog', 'inventory', 'payments', 'orders', 'notifications', 'recommendations', 'productPage'] as const;
export type ModuleName = (typeof MODULES)[number];

export interface ModuleLocation {
  /**
   * Monolith: the base URL the module is reached at if it is hosted elsewhere (empty: hosted here).
   * Services: the origin its process listens on, `http://host:port` (empty: a free port on `host`).
   */
  url: string;
  /** The module's store URL. Empty: `sqlite:<dataDir>/<module>.db` (monolith), `services.db` (services). */
  db: string;
}

export interface ShopConfig {
  topology: 'monolith' | 'services';
  host: string;
  /** 0 picks a free port. */
  port: number;
  dataDir: string;
  durability: 'normal' | 'full';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
  seed: { catalog: boolean; demoUser: boolean; demoUsername: string; demoPassword: string };
  auth: { issuer: string; audience: string; accessTokenTtlSec: number };
  /** Shared secret of module-to-module (internal and admin) routes, header `x-shop-internal-key`. Default: random per start. */
  internalKey: string;
  telemetry: { enabled: boolean };
  payments: { latencyMs: number; latencyJitterMs: number; declineRate: number; errorRate: number; seed: number };
  recommendations: { latencyMs: number; errorRate: number; seed: number };
  inventory: { reservationTtlMs: number; sweepIntervalMs: number };
  orders: { sagaDeadlineMs: number; stepAttemptTimeoutMs: number; maxItems: number; maxQty: number };
  productPage: { bulkheads: { catalog: number; pricing: number; inventory: number; recommendations: number }; timeoutMs: number };
  faults: FaultsConfig;
  modules: Record<ModuleName, ModuleLocation>;
  /** The services topology (ignored by the monolith). */
  services: ServicesConfig;
}

/** Fault injection (`@bulwark/faults`), the same in every process. */
export interface FaultsConfig {
  /** Seed of every rule's random streams: the same seed and rules, the same faults. */
  seed: number;
  /** A JSON rules file (`{ "seed"?, "rules": [...] }`) loaded at start; empty: none. Its own `seed`, if any, wins. */
  file: string;
  /** Serve the runtime admin API at `/admin/faults` (behind the internal key). */
  admin: boolean;
}

export interface ServicesConfig {
  /** The event transport between processes. */
  transport: 'nats' | 'rabbitmq';
  natsUrl: string;
  rabbitmqUrl: string;
  /** The PostgreSQL database holding every module's schema (unless `modules.<name>.db` says otherwise). */
  db: string;
  /**
   * Prefix of every name the set owns on shared servers — schemas
   * (`<namespace>_<module>`), NATS streams and subjects, RabbitMQ exchange and
   * queues — so several sets (test runs) share one PostgreSQL and one broker.
   * Empty: schemas are the module names.
   */
  namespace: string;
  /** PostgreSQL connections per module process. */
  poolSize: number;
  /** How long the launcher waits for every process to be ready. */
  startTimeoutMs: number;
}

export class ConfigError extends Error {
  readonly code = 'SHOP_CONFIG_INVALID';
  constructor(
    readonly key: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(`invalid configuration: ${key} ${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConfigError';
  }
}

export function defaultConfig(): ShopConfig {
  const modules = Object.fromEntries(MODULES.map((m) => [m, { url: '', db: '' }])) as Record<ModuleName, ModuleLocation>;
  return {
    topology: 'monolith',
    host: '127.0.0.1',
    port: 3000,
    dataDir: './data',
    durability: 'normal',
    logLevel: 'warn',
    seed: { catalog: true, demoUser: true, demoUsername: 'demo', demoPassword: 'demo-password' },
    auth: { issuer: 'https://auth.shop.local', audience: 'shop', accessTokenTtlSec: 3_600 },
    internalKey: '',
    telemetry: { enabled: true },
    payments: { latencyMs: 20, latencyJitterMs: 20, declineRate: 0, errorRate: 0, seed: 42 },
    recommendations: { latencyMs: 30, errorRate: 0.2, seed: 7 },
    inventory: { reservationTtlMs: 120_000, sweepIntervalMs: 5_000 },
    orders: { sagaDeadlineMs: 60_000, stepAttemptTimeoutMs: 5_000, maxItems: 20, maxQty: 100 },
    productPage: { bulkheads: { catalog: 20, pricing: 20, inventory: 10, recommendations: 5 }, timeoutMs: 1_000 },
    faults: { seed: 1, file: '', admin: true },
    modules,
    services: {
      transport: 'nats',
      natsUrl: 'nats://127.0.0.1:4222',
      rabbitmqUrl: 'amqp://guest:guest@127.0.0.1:5672',
      db: 'postgres://postgres@127.0.0.1:5432/postgres',
      namespace: '',
      poolSize: 4,
      startTimeoutMs: 60_000,
    },
  };
}

type Kind =
  | { t: 'int'; min: number; max: number }
  | { t: 'rate' }
  | { t: 'string'; min?: number; pattern?: RegExp; hint?: string }
  | { t: 'bool' }
  | { t: 'enum'; values: readonly string[] };

const ms = (min: number, max = 3_600_000): Kind => ({ t: 'int', min, max });
const URLISH = /^$|^https?:\/\/\S+$/;
const STORE_URL = /^$|^(sqlite:|postgres(ql)?:\/\/)\S+$/;

/** Every key and its rule; a key missing here is unknown (and refused in a file). */
const RULES: Record<string, Kind> = {
  topology: { t: 'enum', values: ['monolith', 'services'] },
  host: { t: 'string', min: 1 },
  port: { t: 'int', min: 0, max: 65_535 },
  dataDir: { t: 'string', min: 1 },
  durability: { t: 'enum', values: ['normal', 'full'] },
  logLevel: { t: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] },
  'seed.catalog': { t: 'bool' },
  'seed.demoUser': { t: 'bool' },
  'seed.demoUsername': { t: 'string', min: 3 },
  'seed.demoPassword': { t: 'string', min: 8 },
  'auth.issuer': { t: 'string', min: 1 },
  'auth.audience': { t: 'string', min: 1 },
  'auth.accessTokenTtlSec': { t: 'int', min: 30, max: 3_600 },
  internalKey: { t: 'string' },
  'telemetry.enabled': { t: 'bool' },
  'payments.latencyMs': ms(0, 60_000),
  'payments.latencyJitterMs': ms(0, 60_000),
  'payments.declineRate': { t: 'rate' },
  'payments.errorRate': { t: 'rate' },
  'payments.seed': { t: 'int', min: 0, max: 2 ** 31 - 1 },
  'recommendations.latencyMs': ms(0, 60_000),
  'recommendations.errorRate': { t: 'rate' },
  'recommendations.seed': { t: 'int', min: 0, max: 2 ** 31 - 1 },
  'inventory.reservationTtlMs': ms(1_000, 86_400_000),
  'inventory.sweepIntervalMs': ms(10),
  'orders.sagaDeadlineMs': ms(100),
  'orders.stepAttemptTimeoutMs': ms(10, 600_000),
  'orders.maxItems': { t: 'int', min: 1, max: 1_000 },
  'orders.maxQty': { t: 'int', min: 1, max: 1_000_000 },
  'productPage.bulkheads.catalog': { t: 'int', min: 1, max: 10_000 },
  'productPage.bulkheads.pricing': { t: 'int', min: 1, max: 10_000 },
  'productPage.bulkheads.inventory': { t: 'int', min: 1, max: 10_000 },
  'productPage.bulkheads.recommendations': { t: 'int', min: 1, max: 10_000 },
  'productPage.timeoutMs': ms(1, 600_000),
  'faults.seed': { t: 'int', min: 0, max: Number.MAX_SAFE_INTEGER },
  'faults.file': { t: 'string' },
  'faults.admin': { t: 'bool' },
  'services.transport': { t: 'enum', values: ['nats', 'rabbitmq'] },
  'services.natsUrl': { t: 'string', pattern: /^(nats:\/\/)?\S+$/, hint: 'a NATS server (nats://host:port)' },
  'services.rabbitmqUrl': { t: 'string', pattern: /^amqps?:\/\/\S+$/, hint: 'an amqp:// URL' },
  'services.db': { t: 'string', pattern: /^postgres(ql)?:\/\/\S+$/, hint: 'a postgres:// URL' },
  'services.namespace': { t: 'string', pattern: /^$|^[a-z][a-z0-9]{0,15}$/, hint: 'empty, or up to 16 lowercase letters and digits starting with a letter' },
  'services.poolSize': { t: 'int', min: 1, max: 50 },
  'services.startTimeoutMs': ms(1_000, 600_000),
  ...Object.fromEntries(
    MODULES.flatMap((m) => [
      [`modules.${m}.url`, { t: 'string', pattern: URLISH, hint: 'an http(s) URL or empty' } satisfies Kind],
      [`modules.${m}.db`, { t: 'string', pattern: STORE_URL, hint: 'a sqlite: or postgres:// URL, or empty' } satisfies Kind],
    ]),
  ),
};

/** `payments.declineRate` -> `SHOP_PAYMENTS__DECLINE_RATE`. */
export function envName(path: string): string {
  return `SHOP_${path
    .split('.')
    .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('__')}`;
}

function coerce(key: string, kind: Kind, raw: unknown, fromEnv: boolean): unknown {
  switch (kind.t) {
    case 'int': {
      const n = fromEnv && typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < kind.min || n > kind.max) throw new ConfigError(key, `must be an integer from ${kind.min} to ${kind.max}, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'rate': {
      const n = fromEnv && typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError(key, `must be a number from 0 to 1, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (fromEnv && typeof raw === 'string' && /^(true|1|yes)$/i.test(raw)) return true;
      if (fromEnv && typeof raw === 'string' && /^(false|0|no)$/i.test(raw)) return false;
      throw new ConfigError(key, `must be true or false, got ${JSON.stringify(raw)}`);
    }
    case 'enum':
      if (typeof raw !== 'string' || !kind.values.includes(raw)) throw new ConfigError(key, `must be one of ${kind.values.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
    case 'string':
      if (typeof raw !== 'string' || raw.length < (kind.min ?? 0) || (kind.pattern !== undefined && !kind.pattern.test(raw))) {
        throw new ConfigError(key, `must be ${kind.hint ?? (kind.min ? `a string of at least ${kind.min} characters` : 'a string')}, got ${JSON.stringify(raw)}`);
      }
      return raw;
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>;
  node[parts[parts.length - 1] as string] = value;
}

/** Flattens a JSON object into `a.b.c` paths; a key that is not a known path is refused. */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    if (!(prefix in RULES)) throw new ConfigError(prefix || '(root)', 'is not a configuration key');
    out.set(prefix, value);
    return;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    if (!(path in RULES) && !Object.keys(RULES).some((r) => r.startsWith(`${path}.`))) throw new ConfigError(path, 'is not a configuration key');
    flatten(v, path, out);
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** A JSON file; default `env.SHOP_CONFIG`. */
  file?: string;
  /** Applied last (tests, embedding). */
  overrides?: Record<string, unknown>;
}

/** Defaults + file + env + overrides, validated. Throws `ConfigError` naming the first bad key. */
export function loadConfig(options: LoadOptions = {}): ShopConfig {
  const env = options.env ?? process.env;
  const config = defaultConfig() as unknown as Record<string, unknown>;
  const file = options.file ?? env.SHOP_CONFIG;
  if (file !== undefined && file !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(resolve(file), 'utf8'));
    } catch (error) {
      throw new ConfigError('SHOP_CONFIG', `cannot be read as JSON (${(error as Error).message})`);
    }
    const values = new Map<string, unknown>();
    flatten(parsed, '', values);
    for (const [key, raw] of values) setPath(config, key, coerce(key, RULES[key] as Kind, raw, false));
  }
  for (const [key, kind] of Object.entries(RULES)) {
    const raw = env[envName(key)];
    if (raw !== undefined) setPath(config, key, coerce(envName(key), kind, raw, true));
  }
  if (options.overrides !== undefined) {
    const values = new Map<string, unknown>();
    flatten(options.overrides, '', values);
    for (const [key, raw] of values) setPath(config, key, coerce(key, RULES[key] as Kind, raw, false));
  }
  const shop = config as unknown as ShopConfig;
  if (shop.topology === 'services') {
    for (const m of MODULES) {
      const url = shop.modules[m].url;
      if (url !== '' && new URL(url).pathname !== '/') throw new ConfigError(`modules.${m}.url`, `is where the ${m} process listens in the services topology: an origin (http://host:port), got ${JSON.stringify(url)}`);
    }
  }
  if (shop.payments.declineRate + shop.payments.errorRate > 1) throw new ConfigError('payments.errorRate', 'plus payments.declineRate must not exceed 1');
  if (shop.inventory.reservationTtlMs <= shop.orders.sagaDeadlineMs) {
    // A reservation must outlive the saga that holds it, or the sweeper could release stock of an order about to be confirmed.
    throw new ConfigError('inventory.reservationTtlMs', `must exceed orders.sagaDeadlineMs (${shop.orders.sagaDeadlineMs})`);
  }
  if (shop.faults.file !== '') {
    try {
      readFaultFile(shop.faults.file, { modules: MODULES });
    } catch (error) {
      if (error instanceof FaultConfigError) throw new ConfigError('faults.file', `is refused: ${error.message}`, { cause: error });
      throw error;
    }
  }
  if (shop.internalKey === '') shop.internalKey = randomBytes(24).toString('base64url');
  return shop;
}
