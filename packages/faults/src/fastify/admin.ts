/**
 * `faultAdmin`: the runtime admin API of an injector, as a Fastify plugin the
 * host registers at a prefix of its choosing, behind its own authentication.
 *
 * | Route            | Answer |
 * |------------------|--------|
 * | `GET /`          | 200 `{ seed, rules: [{ ...rule, stats: { matched, injected } }] }` |
 * | `PUT /`          | body `{ seed?, rules: [...] }`: replaces the whole set atomically (all or nothing); 200 as `GET /` |
 * | `DELETE /`       | 204: every rule removed |
 * | `GET /:id`       | 200 `{ rule }` with its stats; 404 when unknown |
 * | `PUT /:id`       | body = the rule without `id`: creates or replaces it (counters reset); 200 `{ rule }` |
 * | `DELETE /:id`    | 204; 404 when unknown |
 *
 * An invalid rule is a 400 `application/problem+json` of type
 * `https://bulwark.dev/problems/faults/invalid-rule` whose `field` (and
 * `invalid-params`) names the offending field, e.g. `rules[2].latency.medianMs`.
 * An unknown id is a 404 of type `.../faults/unknown-rule`.
 *
 * `auth` runs first on every admin request (an `onRequest` hook: before the
 * body is even read) and refuses by throwing or rejecting; `false` serves the
 * API to anyone and must be said explicitly. Its routes are never faulted.
 *
 * @example
 * ```ts
 * await app.register(faultAdmin, { prefix: '/admin/faults', injector, auth: internalOnly(key) });
 * ```
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FaultConfigError, FaultOptionError, UnknownFaultRuleError } from '../errors.js';
import type { FaultInjector } from '../injector.js';
import { validateRuleId } from '../rules.js';
import { FAULTS_EXEMPT } from './inbound.js';

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface FaultAdminOptions {
  injector: FaultInjector;
  /**
   * Authenticates every admin request: resolves to let it through, throws or
   * rejects (with an error the host renders, e.g. a 401/403 problem) to
   * refuse. `false`: no authentication (tests, a loopback-only listener).
   */
  auth: ((request: FastifyRequest, reply: FastifyReply) => unknown) | false;
}

/** The plugin; see the module comment. Encapsulated: register it with a `prefix`. */
export function faultAdmin(app: FastifyInstance, options: FaultAdminOptions, done: (error?: Error) => void): void {
  const { injector, auth } = options;
  // Refusals go to `done`: a plugin that throws would be an uncaught exception, not a failed registration.
  if (typeof (injector as { decide?: unknown } | undefined)?.decide !== 'function') return done(new FaultOptionError('faultAdmin', 'injector', 'a FaultInjector', injector));
  if (auth !== false && typeof auth !== 'function') return done(new FaultOptionError('faultAdmin', 'auth', 'a function that authenticates each request, or false (explicitly unauthenticated)', auth));

  if (auth !== false) {
    app.addHook('onRequest', async (request, reply) => {
      await auth(request, reply);
    });
  }
  const config = { [FAULTS_EXEMPT]: true } as Record<symbol, unknown>;

  app.get('/', { config }, () => Promise.resolve(injector.snapshot()));

  app.put('/', { config }, (request, reply) =>
    answer(reply, () => {
      injector.replace(request.body);
      return injector.snapshot();
    }),
  );

  app.delete('/', { config }, (_request, reply) =>
    answer(reply, () => {
      injector.clear();
      return undefined;
    }),
  );

  app.get<{ Params: { id: string } }>('/:id', { config }, (request, reply) =>
    answer(reply, () => {
      const id = validateRuleId(request.params.id);
      const rule = injector.get(id);
      if (rule === undefined) throw new UnknownFaultRuleError(id);
      return { rule: { ...rule, stats: injector.stats(id) } };
    }),
  );

  app.put<{ Params: { id: string } }>('/:id', { config }, (request, reply) => answer(reply, () => ({ rule: injector.set(validateRuleId(request.params.id), request.body) })));

  app.delete<{ Params: { id: string } }>('/:id', { config }, (request, reply) =>
    answer(reply, () => {
      const id = validateRuleId(request.params.id);
      if (!injector.remove(id)) throw new UnknownFaultRuleError(id);
      return undefined;
    }),
  );
  done();
}

(faultAdmin as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = '@bulwark/faults/admin';

/** Runs `work`: its value as 200 JSON (204 when undefined), a refused rule or unknown id as its problem. */
function answer(reply: FastifyReply, work: () => unknown): Promise<unknown> {
  let value: unknown;
  try {
    value = work();
  } catch (error) {
    if (error instanceof FaultConfigError || error instanceof UnknownFaultRuleError) {
      const problem = { ...error.toProblem(), requestId: reply.request.id };
      return Promise.resolve(reply.code(problem.status).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem)));
    }
    return Promise.reject(error);
  }
  return Promise.resolve(value === undefined ? reply.code(204).send() : reply.code(200).send(value));
}
