/**
 * The instance registry, kept in the platform's database (`@bulwark/store`,
 * SQLite or PostgreSQL): instances register and heartbeat; gateways poll for
 * the instances whose last heartbeat is younger than a TTL.
 *
 * Include the table with
 * `openStore({ ..., migrations: { [module]: own, gateway: gatewayMigrations } })`.
 *
 * Times are epoch milliseconds from the writer's and the reader's wall
 * clocks (`now` options), so the TTL must comfortably exceed the heartbeat
 * interval plus clock skew between hosts (a TTL of 3 heartbeats is usual).
 * An instance that dies without deregistering drops out of the live list
 * once its heartbeat is older than the TTL; its row stays until
 * `pruneInstances` removes it.
 */
import { systemClock, type Clock, type Timer } from '@bulwark/resilience';
import type { Migration, Store } from '@bulwark/store';
import type { Instance } from '../balancing/types.js';
import { normaliseOrigin } from './static.js';
import type { DiscoverySource } from './types.js';

export const gatewayMigrations: readonly Migration[] = [
  {
    id: '20261124T0900_gateway_instances',
    up: async (db) => {
      await db.schema
        .createTable('gateway_instances')
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('weight', 'double precision', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('gateway_instances_pk', ['service', 'id'])
        .execute();
      await db.schema.createIndex('gateway_instances_heartbeat').on('gateway_instances').columns(['service', 'heartbeat_at']).execute();
    },
  },
];

/** Row type of the registry table, for Kysely. Times are epoch milliseconds. */
export interface GatewayTables {
  gateway_instances: {
    service: string;
    id: string;
    url: string;
    weight: number;
    /** JSON object of string labels. */
    metadata: string;
    registered_at: number | string;
    heartbeat_at: number | string;
  };
}

export interface RegisterInstance {
  readonly service: string;
  readonly id: string;
  readonly url: string;
  /** Default 1. */
  readonly weight?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface RegistrationOptions {
  /** Time between heartbeats. */
  readonly heartbeatMs: number;
  /** Schedules heartbeats. Default `systemClock`. */
  readonly clock?: Clock;
  /** Wall-clock epoch milliseconds written as the heartbeat. Default `Date.now`. */
  readonly now?: () => number;
  /** A failed heartbeat (the next one still runs). Default: `process.emitWarning`. */
  readonly onError?: (error: unknown) => void;
}

export interface Registration {
  /** Writes a heartbeat now (re-inserting the row if it was pruned). */
  heartbeat(): Promise<void>;
  /** Stops heartbeating and deletes the row: gateways drop the instance at their next poll. */
  deregister(): Promise<void>;
}

function tables(store: Store<never>): Store<GatewayTables> {
  return store as unknown as Store<GatewayTables>;
}

/**
 * Registers an instance (insert or replace) and heartbeats it every
 * `heartbeatMs` until `deregister()`. Resolves once the first write committed.
 */
export async function registerInstance(store: Store<never>, instance: RegisterInstance, options: RegistrationOptions): Promise<Registration> {
  const db = tables(store).db;
  const clock = options.clock ?? systemClock;
  const now = options.now ?? Date.now;
  const onError = options.onError ?? ((error: unknown) => process.emitWarning(`bulwark gateway registry: heartbeat of "${instance.id}" failed: ${String(error)}`));
  if (!(Number.isFinite(options.heartbeatMs) && options.heartbeatMs > 0)) throw new TypeError(`registerInstance: heartbeatMs must be a positive number, got ${String(options.heartbeatMs)}`);
  if (instance.service === '' || instance.id === '') throw new TypeError('registerInstance: service and id must be non-empty');
  const url = normaliseOrigin(instance.url, 'url');
  const weight = instance.weight ?? 1;
  if (!(Number.isFinite(weight) && weight > 0)) throw new TypeError(`registerInstance: weight must be a positive number, got ${String(weight)}`);
  const metadata = JSON.stringify(instance.metadata ?? {});

  const upsert = async (): Promise<void> => {
    const at = now();
    await db
      .insertInto('gateway_instances')
      .values({ service: instance.service, id: instance.id, url, weight, metadata, registered_at: at, heartbeat_at: at })
      .onConflict((oc) => oc.columns(['service', 'id']).doUpdateSet({ url, weight, metadata, heartbeat_at: at }))
      .execute();
  };
  const heartbeat = async (): Promise<void> => {
    const result = await db
      .updateTable('gateway_instances')
      .set({ heartbeat_at: now() })
      .where('service', '=', instance.service)
      .where('id', '=', instance.id)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) await upsert();
  };

  await upsert();
  let stopped = false;
  let timer: Timer | undefined;
  let inFlight: Promise<void> | undefined;
  // Fixed rate: the next beat is scheduled when this one fires, so database
  // latency does not stretch the interval; a beat still in flight skips the next.
  const schedule = (): void => {
    timer = clock.setTimer(() => {
      timer = undefined;
      if (stopped) return;
      schedule();
      inFlight ??= heartbeat()
        .catch(onError)
        .finally(() => {
          inFlight = undefined;
        });
    }, options.heartbeatMs);
  };
  schedule();

  return {
    heartbeat: () => (stopped ? Promise.resolve() : heartbeat()),
    deregister: async () => {
      if (stopped) return;
      stopped = true;
      timer?.cancel();
      await inFlight;
      await db.deleteFrom('gateway_instances').where('service', '=', instance.service).where('id', '=', instance.id).execute();
    },
  };
}

/** The instances of `service` whose heartbeat is at most `ttlMs` old, ordered by id. */
export async function liveInstances(store: Store<never>, service: string, ttlMs: number, now: number = Date.now()): Promise<Instance[]> {
  const rows = await tables(store)
    .db.selectFrom('gateway_instances')
    .select(['id', 'url', 'weight', 'metadata'])
    .where('service', '=', service)
    .where('heartbeat_at', '>=', now - ttlMs)
    .orderBy('id')
    .execute();
  return rows.map((row) => Object.freeze({ id: row.id, url: row.url, weight: Number(row.weight), metadata: Object.freeze(parseMetadata(row.metadata)) }));
}

/**
 * Deletes rows whose heartbeat is older than `olderThanMs` (instances that
 * died without deregistering), of one service or of all. Returns how many.
 */
export async function pruneInstances(store: Store<never>, options: { readonly olderThanMs: number; readonly service?: string; readonly now?: number }): Promise<number> {
  let query = tables(store)
    .db.deleteFrom('gateway_instances')
    .where('heartbeat_at', '<', (options.now ?? Date.now()) - options.olderThanMs);
  if (options.service !== undefined) query = query.where('service', '=', options.service);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

function parseMetadata(text: string): Record<string, string> {
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
    return out;
  } catch {
    return {};
  }
}

export interface RegistryDiscoveryOptions {
  readonly store: Store<never>;
  readonly service: string;
  /** An instance is live while its last heartbeat is at most this old. */
  readonly ttlMs: number;
  /** Time between polls. Default: a third of `ttlMs`. */
  readonly pollMs?: number;
  /** Schedules polls. Default `systemClock`. */
  readonly clock?: Clock;
  /** Wall-clock epoch milliseconds to compare heartbeats with. Default `Date.now`. */
  readonly now?: () => number;
}

/**
 * Discovery from the registry: polls the live instances every `pollMs`. A
 * failed poll keeps the last known list (reported through the upstream's
 * `onError`): a database hiccup must not empty the gateway.
 */
export function registryDiscovery(options: RegistryDiscoveryOptions): DiscoverySource & { poll(): Promise<void> } {
  const clock = options.clock ?? systemClock;
  const now = options.now ?? Date.now;
  if (!(Number.isFinite(options.ttlMs) && options.ttlMs > 0)) throw new TypeError(`registryDiscovery: ttlMs must be a positive number, got ${String(options.ttlMs)}`);
  const pollMs = options.pollMs ?? options.ttlMs / 3;
  if (!(Number.isFinite(pollMs) && pollMs > 0)) throw new TypeError(`registryDiscovery: pollMs must be a positive number, got ${String(pollMs)}`);
  let update: ((instances: readonly Instance[]) => void) | undefined;
  let report: (error: unknown) => void = () => undefined;
  let timer: Timer | undefined;
  let closed = false;
  let inFlight: Promise<void> | undefined;

  const poll = (): Promise<void> => {
    inFlight ??= liveInstances(options.store, options.service, options.ttlMs, now())
      .then(
        (instances) => {
          if (!closed) update?.(instances);
        },
        (error: unknown) => report(error),
      )
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  const schedule = (): void => {
    if (closed) return;
    timer = clock.setTimer(() => {
      timer = undefined;
      void poll().then(schedule);
    }, pollMs);
  };

  return {
    async start(onUpdate, onError) {
      update = onUpdate;
      report = onError;
      await poll();
      schedule();
    },
    poll,
    async close() {
      closed = true;
      timer?.cancel();
      timer = undefined;
      await inFlight;
    },
  };
}
