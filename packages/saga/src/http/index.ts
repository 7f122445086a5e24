/**
 * `@bulwark/saga/http`: the operator API over HTTP for the ops console — a
 * Fastify plugin for services on the `@bulwark/http` kit (list and filter
 * sagas, read a saga's timeline, retry, force compensation, resolve; every
 * action audited with the authenticated actor), and the problem types of
 * every saga error code.
 *
 * @example
 * ```ts
 * import { sagaAdminRoutes } from '@bulwark/saga/http';
 * await app.register(bearerAuth, { verifier, defaultAuth: 'optional' });
 * await app.register(sagaAdminRoutes, { admin: new SagaAdmin({ store, sagas }) });
 * // GET /admin/sagas?state=stuck   POST /admin/sagas/:id/retry { "reason": "payments back after INC-231" }
 * ```
 */
export { sagaAdminRoutes, type SagaAdminRoutesOptions } from './routes.js';
export { sagaProblem, sagaProblemTypes, type SagaProblemType } from './problems.js';
