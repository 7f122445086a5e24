/**
 * The Idempotency-Key plugin. On a route with `config: { idempotency: true }`
 * (or `{ required: true }`), a request carrying `Idempotency-Key`:
 *
 * - with a malformed key (not 1..255 visible ASCII characters) gets 400;
 * - claims the key, scoped to the caller's identity and the route, with its
 *   fingerprint (method, route, parameters, query, canonical body) and a lock
 *   that expires after `lockMs`;
 * - if a request with the same key is in progress, gets 409 with `Retry-After`;
 * - if one completed, gets its status, the headers that matter and its body
 *   again, marked `Idempotent-Replayed: true`;
 * - if the key was used with a different fingerprint, gets 422.
 *
 * The handler does its effect in `request.idempotency.transaction(fn)`: the
 * completed record (status, headers, body) is written in the same transaction
 * as the effect, so either both commit or neither does. A handler that throws
 * releases the claim so a retry may run; a claim whose holder crashed is taken
 * over once its lock expires. Records expire after `ttlMs` (24 h) and a
 * cleanup routine deletes them.
 *
 * @example
 * ```ts
 * await app.register(idempotency, { store, identity: (request) => request.user?.sub });
 * app.post('/payments', { config: { idempotency: { required: true } }, schema }, async (request, reply) =>
 *   request.idempotency.transaction<ShopDb>(async (tx) => {
 *     const payment = await payments.charge(tx, request.body);
 *     reply.code(201).header('location', `/payments/${payment.id}`);
 *     return payment;
 *   }),
 * );
 * ```
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, onResponseAsyncHookHandler, preHandlerAsyncHookHandler, RouteOptions } from 'fastify';
import { syncPlugin } from '../sync-plugin.js';
import type { Store, UnitOfWork } from '@bulwark/store';
import { problem } from '../problem/problem-error.js';
import { requestFingerprint } from './fingerprint.js';
import type { HttpTables } from './http-migrations.js';
import { claimKey, claimLost, completeKey, deleteExpired, releaseKey, type RecordKey, type StoredResponse } from './idempotency-records.js';

/** The request header. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** The header marking a replayed response. */
export const REPLAYED_HEADER = 'idempotent-replayed';

const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;

/** True when `key` is a valid Idempotency-Key: 1 to 255 visible ASCII characters. */
export function isValidIdempotencyKey(key: string): boolean {
  return KEY_FORMAT.test(key);
}

/** Per-route options (`config.idempotency`). */
export interface IdempotencyRouteOptions {
  /** Refuse requests without a key (400). Default false: such requests run without idempotency. */
  required?: boolean;
}

/**
 * Options of the idempotency plugin.
 *
 * @example
 * ```ts
 * const options: IdempotencyOptions = { store, identity: (request) => request.headers['x-tenant'] as string, ttlMs: 86_400_000 };
 * ```
 */
export interface IdempotencyOptions {
  /** The module's store; its migrations must include `httpMigrations`. */
  store: Store<never>;
  /** The caller's identity: keys are scoped to it. Default: every caller is `anonymous`. */
  identity?: (request: FastifyRequest) => string | undefined;
  /** How long a completed (or abandoned) record is kept. Default 24 h. */
  ttlMs?: number;
  /** How long a claim holds its key before another request may take it over. Longer than any handler may run. Default 60 s. */
  lockMs?: number;
  /** `Retry-After` of a 409 for a request in progress, in seconds. Default 1. */
  retryAfterSeconds?: number;
  /** Headers replayed besides content-type, location, etag, last-modified, content-location and cache-control. */
  replayHeaders?: readonly string[];
  /** How often expired records are deleted; `false` for never (call `app.idempotencyKeys.cleanup()` yourself). Default 1 h. */
  cleanupIntervalMs?: number | false;
  /** Wall clock, epoch milliseconds: records outlive the process. Default `Date.now`. */
  clock?: { now(): number };
}

/** The unit of work of an idempotent request (`request.idempotency`). */
export interface IdempotencyContext {
  /** The key, or `undefined` when an optional key was not sent. */
  readonly key: string | undefined;
  /** True when this request took over a key whose previous holder ran past its lock. */
  readonly reclaimed: boolean;
  /**
   * Runs `fn` in one transaction of the store and records the response in
   * that same transaction: what `fn` returns is the body, sent with the
   * status and headers set on `reply`. Returns the reply (already sent);
   * return it from the handler. Runs at most once per request.
   */
  transaction<DB = HttpTables>(fn: (tx: UnitOfWork<DB>) => Promise<unknown>): Promise<FastifyReply>;
}

/** Maintenance of the records (`app.idempotencyKeys`). */
export interface IdempotencyKeys {
  /** Deletes expired records; returns how many. */
  cleanup(): Promise<number>;
}

const baseReplayHeaders = ['content-type', 'location', 'etag', 'last-modified', 'content-location', 'cache-control'];
const kContext = Symbol('bulwark.http.idempotency');

interface Settings {
  store: Store<HttpTables>;
  identity: (request: FastifyRequest) => string | undefined;
  ttlMs: number;
  lockMs: number;
  retryAfter: string;
  replayHeaders: readonly string[];
  now: () => number;
}

class IdempotentRequest implements IdempotencyContext {
  token: string | undefined = undefined;
  reclaimed = false;
  /** 'open' until the transaction commits ('done') or the claim is released ('released'). */
  phase: 'open' | 'running' | 'done' | 'released' = 'open';

  constructor(
    private readonly settings: Settings,
    private readonly reply: FastifyReply,
    readonly key: string | undefined,
    readonly id: RecordKey | undefined,
  ) {}

  async transaction<DB = HttpTables>(fn: (tx: UnitOfWork<DB>) => Promise<unknown>): Promise<FastifyReply> {
    if (this.phase !== 'open') throw new Error('request.idempotency.transaction() runs once per request');
    this.phase = 'running';
    const { settings, reply, id, token } = this;
    let response: StoredResponse;
    let committing = false;
    try {
      response = await settings.store.transaction(async (tx) => {
        const value = await fn(tx as unknown as UnitOfWork<DB>);
        const stored = toStoredResponse(reply, value, settings.replayHeaders);
        if (id !== undefined && token !== undefined) await completeKey(tx, id, token, stored);
        committing = true;
        return stored;
      });
    } catch (error) {
      const held = await this.release();
      // The commit failed with the claim gone: on PostgreSQL that is how a completion that found its claim taken over fails.
      if (committing && !held && id !== undefined && token !== undefined) throw claimLost();
      throw error;
    }
    this.phase = 'done';
    return reply.send(response.body);
  }

  /** Gives the claim back, if this request holds one that is not completed. Returns true when it still held it. */
  async release(): Promise<boolean> {
    if (this.phase === 'done' || this.phase === 'released') return false;
    this.phase = 'released';
    if (this.id !== undefined && this.token !== undefined) return releaseKey(this.settings.store, this.id, this.token);
    return false;
  }
}

/** The body as sent (serialised by the route's serializer for the status set) and the headers worth replaying. */
function toStoredResponse(reply: FastifyReply, value: unknown, replayHeaders: readonly string[]): StoredResponse {
  let body: string | Buffer;
  if (value === undefined || value === null) body = '';
  else if (Buffer.isBuffer(value)) {
    body = value;
    if (!reply.hasHeader('content-type')) reply.type('application/octet-stream');
  } else if (typeof value === 'string') {
    body = value;
    if (!reply.hasHeader('content-type')) reply.type('text/plain; charset=utf-8');
  } else {
    body = reply.serialize(value) as string;
    if (!reply.hasHeader('content-type')) reply.type('application/json; charset=utf-8');
  }
  const headers: Record<string, string> = {};
  for (const name of replayHeaders) {
    const value = reply.getHeader(name);
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return { status: reply.statusCode, headers, body };
}

function setUp(app: FastifyInstance, options: IdempotencyOptions): void {
  if (typeof options.store?.transaction !== 'function') throw new TypeError('idempotency: option "store" must be a @bulwark/store Store whose migrations include httpMigrations');
  const ttlMs = positive('ttlMs', options.ttlMs ?? 24 * 60 * 60 * 1000);
  const lockMs = positive('lockMs', options.lockMs ?? 60_000);
  const retryAfterSeconds = positive('retryAfterSeconds', options.retryAfterSeconds ?? 1);
  const clock = options.clock ?? { now: Date.now };
  const settings: Settings = {
    store: options.store as unknown as Store<HttpTables>,
    identity: options.identity ?? (() => undefined),
    ttlMs,
    lockMs,
    retryAfter: String(Math.ceil(retryAfterSeconds)),
    replayHeaders: [...new Set([...baseReplayHeaders, ...(options.replayHeaders ?? []).map((h) => h.toLowerCase())])],
    now: () => clock.now(),
  };

  app.decorateRequest(kContext as unknown as string, null);
  app.decorateRequest('idempotency', {
    getter(this: FastifyRequest): IdempotencyContext {
      const context = (this as unknown as Record<symbol, IdempotencyContext | null>)[kContext];
      if (context === null || context === undefined) throw new Error('request.idempotency exists only on routes with config.idempotency, under the idempotency plugin');
      return context;
    },
  });
  const keys: IdempotencyKeys = { cleanup: () => deleteExpired(settings.store, settings.now()) };
  app.decorate('idempotencyKeys', keys);

  app.addHook('onRoute', (route: RouteOptions) => {
    const config = (route.config)?.idempotency;
    if (config === undefined || config === false) return;
    const required = typeof config === 'object' && config.required === true;
    const routeName = `${route.method.toString()} ${route.url}`;
    route.preHandler = [...hooks(route.preHandler), claimHook(settings, routeName, required)];
    route.onResponse = [...hooks(route.onResponse), releaseHook];
  });

  if (options.cleanupIntervalMs !== false) {
    const interval = positive('cleanupIntervalMs', options.cleanupIntervalMs ?? 60 * 60 * 1000);
    const timer = setInterval(() => {
      keys.cleanup().catch((error: unknown) => app.log.warn({ err: error }, 'idempotency: cleanup failed'));
    }, interval);
    timer.unref();
    app.addHook('onClose', (_instance, done) => {
      clearInterval(timer);
      done();
    });
  }
}

function claimHook(settings: Settings, routeName: string, required: boolean): preHandlerAsyncHookHandler {
  return async function claimIdempotencyKey(request: FastifyRequest, reply: FastifyReply) {
    const header = request.headers[IDEMPOTENCY_KEY_HEADER];
    if (header === undefined) {
      if (required) throw problem('idempotency-key-missing', 'This route requires an Idempotency-Key header.');
      (request as unknown as Record<symbol, unknown>)[kContext] = new IdempotentRequest(settings, reply, undefined, undefined);
      return;
    }
    if (typeof header !== 'string' || !KEY_FORMAT.test(header)) throw problem('idempotency-key-invalid', 'Idempotency-Key must be 1 to 255 visible ASCII characters.');
    const id: RecordKey = { scope: settings.identity(request) ?? 'anonymous', route: routeName, key: header };
    const fingerprint = requestFingerprint(request.method, routeName, request.params, request.query, request.body);
    const claim = await claimKey(settings.store, id, fingerprint, { now: settings.now(), lockMs: settings.lockMs, ttlMs: settings.ttlMs });
    switch (claim.kind) {
      case 'claimed': {
        const context = new IdempotentRequest(settings, reply, header, id);
        context.token = claim.token;
        context.reclaimed = claim.reclaimed;
        (request as unknown as Record<symbol, unknown>)[kContext] = context;
        return;
      }
      case 'replay':
        return reply.code(claim.response.status).headers(claim.response.headers).header(REPLAYED_HEADER, 'true').send(claim.response.body);
      case 'in-progress':
        throw problem('idempotency-in-progress', 'A request with this Idempotency-Key is still in progress.', { headers: { 'retry-after': settings.retryAfter } });
      case 'mismatch':
        throw problem('idempotency-key-reused', 'This Idempotency-Key was used with a different request.');
    }
  };
}

// A handler that answered without completing its transaction (it threw, or never called it) gives the key back.
const releaseHook: onResponseAsyncHookHandler = async function releaseIdempotencyKey(request: FastifyRequest) {
  const context = (request as unknown as Record<symbol, IdempotentRequest | null>)[kContext];
  if (context !== null && context !== undefined) await context.release().catch((error: unknown) => request.log.warn({ err: error }, 'idempotency: release failed'));
};

function hooks<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new TypeError(`idempotency: option "${name}" must be a positive finite number, got ${String(value)}`);
  return value;
}

/**
 * The Idempotency-Key plugin (wrapped by fastify-plugin). Register it before the routes it applies to.
 *
 * @example
 * ```ts
 * const store = await openStore({ module: 'payments', url, migrations: { payments: own, http: httpMigrations } });
 * await app.register(idempotency, { store });
 * ```
 */
export const idempotency: FastifyPluginCallback<IdempotencyOptions> = syncPlugin('@bulwark/http/idempotency', setUp);
