/**
 * What every module shares: where the other modules are (`Directory`), how a
 * module opens its own store, the internal-route guard, the shop's problem
 * types, and a seeded random source for the simulators.
 *
 * A module reaches another only through a client on a base URL from the
 * directory — in the monolith that URL is this process's own listener on
 * loopback, in the services topology another process — and its own data only
 * through its own store.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { FaultInjector } from '@bulwark/faults';
import { faultInterceptor } from '@bulwark/faults/undici';
import { problem, type ProblemError } from '@bulwark/http';
import { createClient, type ClientOptions, type HttpClient } from '@bulwark/http/client';
import type { Participant, ParticipantContext } from '@bulwark/saga/participants';
import { openStore, type Migrations, type Store } from '@bulwark/store';
import type { ModuleName, ShopConfig } from './config.js';

export const INTERNAL_KEY_HEADER = 'x-shop-internal-key';
export const SHOP_PROBLEM_BASE = 'https://bulwark.dev/problems/shop/';

/** A shop problem: `https://bulwark.dev/problems/shop/<slug>`. */
export function shopProblem(slug: string, status: number, title: string, detail?: string, extensions?: Record<string, unknown>): ProblemError {
  return problem({ type: `${SHOP_PROBLEM_BASE}${slug}`, status, title, ...(detail === undefined ? {} : { detail }), ...(extensions === undefined ? {} : { extensions }), code: `SHOP_${slug.toUpperCase().replace(/-/g, '_')}` });
}

export interface DirectoryOptions {
  /** Outbound fault injection on every client the directory makes (`@bulwark/faults`). */
  faults?: FaultInjector;
}

interface DirectoryState {
  readonly internalKey: string;
  readonly faults: FaultInjector | undefined;
  readonly urls: Map<ModuleName, string>;
  readonly clients: Map<string, HttpClient>;
}

/**
 * Where each module listens, and one resilient client per (caller, callee,
 * purpose). A module is handed its own view (`forModule`): the clients it
 * makes are its outgoing calls, so outbound fault rules can match them by
 * caller (`match.module`) and by callee (`match.dependency`: the callee
 * module, or the client's name).
 */
export class Directory {
  private readonly state: DirectoryState;
  /** The module whose code calls through this view, if any. */
  readonly caller: ModuleName | undefined;

  constructor(internalKey: string, options: DirectoryOptions = {}, view?: { state: DirectoryState; caller: ModuleName }) {
    this.state = view?.state ?? { internalKey, faults: options.faults, urls: new Map(), clients: new Map() };
    this.caller = view?.caller;
  }

  /** The same directory, as `module`'s code uses it: its clients are `module`'s outgoing calls. */
  forModule(module: ModuleName): Directory {
    return new Directory(this.state.internalKey, {}, { state: this.state, caller: module });
  }

  set(module: ModuleName, baseUrl: string): void {
    this.state.urls.set(module, baseUrl.replace(/\/+$/, ''));
  }

  url(module: ModuleName): string {
    const url = this.state.urls.get(module);
    if (url === undefined) throw shopProblem('module-unavailable', 503, 'Module not reachable yet', `${module} has no address yet`);
    return url;
  }

  /**
   * The client `name` to `module`, created on first use (addresses are known
   * once the listener is up). Internal calls carry the internal key.
   */
  client(module: ModuleName, name: string, options: Omit<ClientOptions, 'baseUrl' | 'name'> = {}): HttpClient {
    const { clients, faults, internalKey } = this.state;
    const key = `${this.caller ?? ''}:${name}`;
    let client = clients.get(key);
    if (client === undefined) {
      const interceptors = faults === undefined ? options.interceptors : [...(options.interceptors ?? []), faultInterceptor(faults, { ...(this.caller === undefined ? {} : { module: this.caller }), dependency: [module, name] })];
      client = createClient({
        ...options,
        baseUrl: this.url(module),
        name,
        headers: { ...options.headers, [INTERNAL_KEY_HEADER]: internalKey },
        ...(interceptors === undefined ? {} : { interceptors }),
      });
      clients.set(key, client);
    }
    return client;
  }

  async close(): Promise<void> {
    const all = [...this.state.clients.values()];
    this.state.clients.clear();
    await Promise.allSettled(all.map((c) => c.close()));
  }
}

/** A participant whose transport is made on first call (its client needs the directory filled). */
export function lazyParticipant(name: string, make: () => Participant): Participant {
  let participant: Participant | undefined;
  return {
    name,
    call<Res = unknown>(operation: string, request: unknown, ctx: ParticipantContext): Promise<Res> {
      participant ??= make();
      return participant.call<Res>(operation, request, ctx);
    },
  };
}

/**
 * The name of a module's store: its SQLite file (`<name>.db`) or its
 * PostgreSQL schema — the module's name, behind `services.namespace_` when the
 * services topology has a namespace.
 */
export function storeNameOf(config: ShopConfig, module: ModuleName): string {
  const name = module === 'productPage' ? 'product_page' : module;
  return config.topology === 'services' && config.services.namespace !== '' ? `${config.services.namespace}_${name}` : name;
}

/**
 * A module's own store: `modules.<name>.db`, else `sqlite:<dataDir>/<name>.db`
 * (monolith) or the schema `storeNameOf(module)` on `services.db` (services).
 */
export function openModuleStore<DB>(config: ShopConfig, module: ModuleName, migrations: Migrations): Promise<Store<DB>> {
  const name = storeNameOf(config, module);
  const url = config.modules[module].db || (config.topology === 'services' ? config.services.db : `sqlite:${join(config.dataDir, `${name}.db`)}`);
  return openStore<DB>({ module: name, url, migrations, durability: config.durability, poolSize: config.services.poolSize });
}

/** preHandler of internal routes (module-to-module and admin): the shared internal key, compared in constant time. */
export function internalOnly(internalKey: string): (request: FastifyRequest) => Promise<void> {
  const expected = createHash('sha256').update(internalKey).digest();
  return (request) => {
    const given = request.headers[INTERNAL_KEY_HEADER];
    const digest = createHash('sha256').update(typeof given === 'string' ? given : '').digest();
    if (typeof given !== 'string' || !timingSafeEqual(digest, expected)) {
      return Promise.reject(shopProblem('internal-route', 403, 'Internal route', `this route is for other modules of the shop (header ${INTERNAL_KEY_HEADER})`));
    }
    return Promise.resolve();
  };
}

/** A small seeded PRNG (mulberry32), so a simulator's run is reproducible from its seed. */
export { seededRandom } from '@bulwark/resilience';

/** A stable number in [0, 1) for `key` under `seed` (the same key always draws the same value). */
export function keyedDraw(seed: number, key: string): number {
  return createHash('sha256').update(`${seed}:${key}`).digest().readUInt32BE(0) / 4_294_967_296;
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

export const now = (): number => Date.now();
