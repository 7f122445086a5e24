/**
 * `logLevelsRoute`: `GET /admin/log-levels` lists the root and module log
 * levels; `PUT /admin/log-levels` changes them at runtime with a body of
 * `{ "levels": { "root": "warn", "payments": "debug", "orders": null } }`
 * (`null` makes a module follow the root again).
 *
 * Bad input answers 400 (unknown level) or 404 (unknown module) with an
 * `application/problem+json` body carrying the error's stable `code`; nothing
 * is changed unless every entry is valid. The route changes how much a
 * service writes: put it behind your admin authentication (`authorize`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidLogLevelError, UnknownLogModuleError, isTelemetryError } from '../errors.js';
import { LOG_LEVELS, ROOT_MODULE, type LogLevels } from '../logging/log-levels.js';

export interface LogLevelsRouteOptions {
  levels: LogLevels;
  /** Default `/admin/log-levels`. */
  path?: string;
  /** Called before the route answers; throw (or reply) to refuse. */
  authorize?: (request: FastifyRequest, reply: FastifyReply) => void | Promise<void>;
}

/** The plugin; see the module comment. */
export function logLevelsRoute(app: FastifyInstance, options: LogLevelsRouteOptions, done: (error?: Error) => void): void {
  const path = options.path ?? '/admin/log-levels';
  const { levels } = options;
  const preHandler = options.authorize === undefined ? [] : [options.authorize];

  app.get(path, { preHandler }, (_request, reply) => reply.send(levels.snapshot()));

  app.put(path, { preHandler }, async (request, reply) => {
    try {
      const changes = parse(request.body, levels);
      // Root first, so module entries in the same request win over it.
      const ordered = changes.sort(([a], [b]) => (a === ROOT_MODULE ? -1 : b === ROOT_MODULE ? 1 : 0));
      for (const [module, level] of ordered) levels.setLevel(module, level);
      request.log.warn({ changes: Object.fromEntries(changes) }, 'log levels changed');
      return levels.snapshot();
    } catch (error) {
      if (!isTelemetryError(error)) throw error;
      return reply
        .code(error.status)
        .header('content-type', 'application/problem+json')
        .send({ type: `urn:bulwark:telemetry:${error.code}`, title: error.message, status: error.status, code: error.code });
    }
  });
  done();
}

/** Validates the whole body before anything changes. */
function parse(body: unknown, levels: LogLevels): [string, string | null][] {
  const map = (body as { levels?: unknown } | null)?.levels;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new InvalidLogLevelError(body, LOG_LEVELS);
  const known = new Set(levels.names());
  const changes: [string, string | null][] = [];
  for (const [module, level] of Object.entries(map as Record<string, unknown>)) {
    if (module !== ROOT_MODULE && !known.has(module)) throw new UnknownLogModuleError(module);
    if (level === null && module !== ROOT_MODULE) changes.push([module, null]);
    else if (typeof level === 'string' && LOG_LEVELS.includes(level)) changes.push([module, level]);
    else throw new InvalidLogLevelError(level, LOG_LEVELS);
  }
  return changes;
}
