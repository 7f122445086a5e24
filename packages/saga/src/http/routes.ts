/**
 * `sagaAdminRoutes`: the operator API of `SagaAdmin` over HTTP, for the ops
 * console. A Fastify plugin for a service built on the `@bulwark/http` kit.
 *
 * | route | requires | answers |
 * | --- | --- | --- |
 * | `GET {prefix}/sagas?state=&type=&olderThanMs=&newerThanMs=&limit=&after=` | read | 200 `{ sagas, nextAfter }` (newest first) |
 * | `GET {prefix}/sagas/overdue?limit=` | read | 200 `{ sagas }` past their deadline and not finished |
 * | `GET {prefix}/sagas/:id` | read | 200 the saga with its step log, audit trail and timeline; 404 |
 * | `POST {prefix}/sagas/:id/retry` `{ reason }` | operate | 200 the saga after the change; 404, 409 (not stuck) |
 * | `POST {prefix}/sagas/:id/force-compensate` `{ reason }` | operate | 200; 404, 409 (finished, compensating, past its pivot) |
 * | `POST {prefix}/sagas/:id/resolve` `{ reason }` | operate | 200; 404, 409 (not stuck) |
 *
 * `state` repeats (`?state=stuck&state=running`) or takes a comma list
 * (`?state=stuck,running`). Every action is audited with the actor read from
 * the authenticated identity (default: the token's `sub`) and the body's
 * `reason`; a client cannot name the actor.
 *
 * **Auth.** Reads require `read` (default `{ scopes: ['saga:read'] }`),
 * actions `operate` (default `{ scopes: ['saga:operate'] }`), as
 * `@bulwark/http/auth` route requirements: `bearerAuth` checks them before the
 * body is read (401 without a valid token, 403 without the scope or role).
 * Register `bearerAuth` around this plugin (any `defaultAuth`), or pass
 * `verifier` and the plugin registers it for its own routes only. Each route
 * also checks its requirement again in a `preHandler`, so the routes stay
 * closed (401) if no `bearerAuth` runs at all.
 *
 * **Errors** are problem+json through the kit's error handler: saga errors
 * with their own stable types (`sagaProblemTypes`: `saga-not-found` 404,
 * `saga-state-conflict` 409, `saga-action-invalid` 400, ...), schema failures
 * as the kit's `validation`, auth failures as the auth module's types.
 *
 * The routes carry schemas (tag `sagas`), so the kit's `/openapi.json` lists them.
 *
 * @example
 * ```ts
 * import { createService } from '@bulwark/http';
 * import { bearerAuth, JwtVerifier } from '@bulwark/http/auth';
 * import { SagaAdmin } from '@bulwark/saga';
 * import { sagaAdminRoutes } from '@bulwark/saga/http';
 *
 * const app = await createService({ kit: { openapi: { info: { title: 'orders', version: '1.0.0' } } } });
 * await app.register(bearerAuth, { verifier, defaultAuth: 'optional' });
 * await app.register(sagaAdminRoutes, {
 *   admin: new SagaAdmin({ store, sagas: [createOrder] }),
 *   prefix: '/ops',                                   // default '/admin'
 *   read: { scopes: ['saga:read'] },
 *   operate: { roles: ['sre', 'support-lead'] },
 *   actor: (request) => request.user?.claims.email as string | undefined,
 * });
 * ```
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerAuth, requireAuth, UnauthenticatedError, type AuthRequirement, type JwtVerifier } from '@bulwark/http/auth';
import type { SagaAdmin, SagaListFilter, SagaSummary } from '../admin.js';
import { SagaConfigError } from '../errors.js';
import type { SagaState } from '../repository.js';
import { sagaProblem } from './problems.js';
import { actionBody, idParams, listQuery, overdueQuery, problemResponse, sagaDetail, sagaList, sagaPage, sagaSummary } from './schemas.js';

export interface SagaAdminRoutesOptions {
  /** The operator API the routes serve. */
  admin: SagaAdmin;
  /**
   * Path prefix of the routes. Default `/admin` (`/admin/sagas`). Fastify's
   * own `prefix` register option, so it composes with enclosing prefixes;
   * `''` mounts them at the root of the enclosing context.
   */
  prefix?: string;
  /** What the read routes require. Default `{ scopes: ['saga:read'] }`. */
  read?: AuthRequirement;
  /** What the actions require. Default `{ scopes: ['saga:operate'] }`. */
  operate?: AuthRequirement;
  /**
   * The actor recorded in the audit trail, from the authenticated request.
   * Default: the token's subject (`request.user.sub`). Returning nothing
   * refuses the action with 401.
   */
  actor?: (request: FastifyRequest) => string | undefined;
  /**
   * Registers `bearerAuth` with this verifier for these routes only. Leave it
   * out when `bearerAuth` is registered around the plugin.
   */
  verifier?: JwtVerifier;
}

interface ListQuery {
  state?: string[];
  type?: string;
  olderThanMs?: number;
  newerThanMs?: number;
  limit?: number;
  after?: string;
}

const TAGS = ['sagas'];
const problems = (...statuses: number[]): Record<number, typeof problemResponse> => Object.fromEntries([401, 403, ...statuses].map((s) => [s, problemResponse]));

/** The plugin (see the module comment). Encapsulated: its hooks stay with its routes. */
export function sagaAdminRoutes(app: FastifyInstance, options: SagaAdminRoutesOptions, done: (error?: Error) => void): void {
  try {
    install(app, options);
  } catch (error) {
    done(error as Error);
    return;
  }
  done();
}

function install(app: FastifyInstance, options: SagaAdminRoutesOptions): void {
  const admin = options.admin;
  if (typeof admin !== 'object' || admin === null || typeof admin.list !== 'function' || typeof admin.retryStep !== 'function') throw new SagaConfigError('admin', 'must be a SagaAdmin');
  const read = requirement('read', options.read, { scopes: ['saga:read'] });
  const operate = requirement('operate', options.operate, { scopes: ['saga:operate'] });
  const actorOf = options.actor ?? ((request: FastifyRequest) => request.user?.sub);
  if (typeof actorOf !== 'function') throw new SagaConfigError('actor', 'must be a function of the request');
  // Fastify applies a given `prefix` itself; only the default is ours to add.
  const base = options.prefix === undefined ? '/admin' : '';

  const routes = (scope: FastifyInstance, _opts: unknown, next: (error?: Error) => void): void => {
    const readRoute = { config: { auth: read }, preHandler: requireAuth(read) };
    const operateRoute = { config: { auth: operate }, preHandler: requireAuth(operate) };

    scope.get<{ Querystring: ListQuery }>(
      `${base}/sagas`,
      {
        ...readRoute,
        schema: { tags: TAGS, summary: 'List sagas, newest first, by state, type and age', querystring: listQuery, response: { 200: sagaPage, ...problems(400) } },
      },
      async (request) => {
        const q = request.query;
        const filter: SagaListFilter = { limit: q.limit ?? 50 };
        if (q.state !== undefined) filter.states = [...new Set(q.state.flatMap((s) => s.split(',')))] as SagaState[];
        if (q.type !== undefined) filter.type = q.type;
        if (q.olderThanMs !== undefined) filter.olderThanMs = q.olderThanMs;
        if (q.newerThanMs !== undefined) filter.newerThanMs = q.newerThanMs;
        if (q.after !== undefined) filter.after = q.after;
        const sagas = await call(() => admin.list(filter));
        return { sagas, nextAfter: sagas.length === filter.limit ? (sagas[sagas.length - 1]?.id ?? null) : null };
      },
    );

    scope.get<{ Querystring: { limit?: number } }>(
      `${base}/sagas/overdue`,
      { ...readRoute, schema: { tags: TAGS, summary: 'Sagas past their deadline and not finished', querystring: overdueQuery, response: { 200: sagaList, ...problems(400) } } },
      async (request) => ({ sagas: await call(() => admin.overdue(request.query.limit ?? 100)) }),
    );

    scope.get<{ Params: { id: string } }>(
      `${base}/sagas/:id`,
      { ...readRoute, schema: { tags: TAGS, summary: 'One saga with its step log, audit trail and timeline', params: idParams, response: { 200: sagaDetail, ...problems(400, 404) } } },
      async (request) => call(() => admin.get(request.params.id)),
    );

    const action = (path: string, summary: string, run: (id: string, who: { actor: string; reason: string }) => Promise<SagaSummary>): void => {
      scope.post<{ Params: { id: string }; Body: { reason: string } }>(
        `${base}/sagas/:id/${path}`,
        { ...operateRoute, schema: { tags: TAGS, summary, params: idParams, body: actionBody, response: { 200: sagaSummary, ...problems(400, 404, 409) } } },
        async (request) => {
          const actor = actorOf(request);
          if (typeof actor !== 'string' || actor === '') throw new UnauthenticatedError();
          return call(() => run(request.params.id, { actor, reason: request.body.reason }));
        },
      );
    };
    action('retry', 'Retry the step a stuck saga is stuck on (same idempotency key); audited', (id, who) => admin.retryStep(id, who));
    action('force-compensate', 'Make a saga that has not passed its pivot compensate now; audited', (id, who) => admin.forceCompensate(id, who));
    action('resolve', 'Mark a stuck saga resolved after fixing it by hand (frees its lock); audited', (id, who) => admin.markResolved(id, who));
    next();
  };

  if (options.verifier !== undefined) void app.register(bearerAuth, { verifier: options.verifier });
  // In a child context registered after bearerAuth, so its hook is in place when the routes are added.
  void app.register(routes);
}

/** Runs an admin call; a saga error leaves as its problem. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw sagaProblem(error);
  }
}

function requirement(key: string, value: AuthRequirement | undefined, fallback: AuthRequirement): AuthRequirement {
  if (value === undefined) return fallback;
  if (typeof value !== 'object' || value === null) throw new SagaConfigError(key, 'must be { scopes?: string[], roles?: string[] }');
  const { scopes, roles } = value;
  if ((scopes === undefined || scopes.length === 0) && (roles === undefined || roles.length === 0)) {
    // An empty requirement would let any valid token operate sagas: say so explicitly instead.
    throw new SagaConfigError(key, 'must name at least one scope or role');
  }
  return value;
}
