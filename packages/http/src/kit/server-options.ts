/**
 * The Fastify server options the service kit relies on. Spread them into
 * `fastify({...})` (or use `createService()`): the request id comes from
 * `genReqId`, the HTTP parser's refusals become problems, and the kit (not
 * Fastify) answers requests that arrive while the instance drains.
 */
import { LogController, type FastifyServerOptions } from 'fastify';
import { problemClientErrorHandler } from '../problem/problem-handlers.js';
import { requestIdOf } from './request-id.js';

/**
 * Kit server options, with `overrides` applied on top.
 *
 * @example
 * ```ts
 * const app = fastify(kitServerOptions({ logger: { level: 'info' }, bodyLimit: 256 * 1024 }));
 * await app.register(serviceKit, { metrics });
 * ```
 */
export function kitServerOptions(overrides: FastifyServerOptions = {}): FastifyServerOptions {
  return {
    bodyLimit: 1024 * 1024,
    genReqId: requestIdOf,
    // The kit writes one access-log line per request instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    // Draining is answered by the kit, as a problem.
    return503OnClosing: false,
    clientErrorHandler: problemClientErrorHandler,
    ...overrides,
  };
}
