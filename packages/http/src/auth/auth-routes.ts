/**
 * The auth module's HTTP face, as a Fastify plugin:
 *
 * | route | body | answers |
 * | --- | --- | --- |
 * | `POST {prefix}/register` | `{ username, password }` | 201 `{ id, username, roles, scopes }`; 409 username-taken |
 * | `POST {prefix}/token` | `{ username, password }` | 200 `TokenSet`; 401 invalid-credentials (same for unknown users) |
 * | `POST {prefix}/refresh` | `{ refresh_token }` | 200 `TokenSet`; 401 invalid-refresh-token (`reason`) |
 * | `POST {prefix}/logout` | `{ refresh_token }` | 204 (the token's family is revoked) |
 * | `GET /.well-known/jwks.json` | — | 200 the public signing keys |
 *
 * Every route sets `config.auth = false`, so a `bearerAuth` registered around
 * it does not demand an access token. Bodies are checked by the service
 * itself (a route schema is attached for OpenAPI, with validation errors
 * turned into `invalid-request` problems); token responses carry
 * `Cache-Control: no-store`.
 *
 * @example
 * ```ts
 * await app.register(authRoutes, { service: auth, prefix: '/auth' });
 * ```
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthService } from './auth-service.js';
import { AuthConfigError, InvalidAuthRequestError } from './errors.js';

export interface AuthRoutesOptions {
  service: AuthService;
  /** Prefix of the register/token/refresh/logout routes. Default `/auth`. */
  prefix?: string;
  /** Path of the key set. Default `/.well-known/jwks.json`. */
  jwksPath?: string;
  /** `Cache-Control: max-age` of the key set, in seconds. Default 300. */
  jwksMaxAgeSec?: number;
}

const credentials = {
  type: 'object',
  required: ['username', 'password'],
  properties: { username: { type: 'string', minLength: 3, maxLength: 64 }, password: { type: 'string', minLength: 8, maxLength: 256 } },
} as const;
const refresh = { type: 'object', required: ['refresh_token'], properties: { refresh_token: { type: 'string', maxLength: 64 } } } as const;

interface Body {
  username?: unknown;
  password?: unknown;
  refresh_token?: unknown;
}

/** The plugin (see the module comment). */
export function authRoutes(app: FastifyInstance, options: AuthRoutesOptions, done: (error?: Error) => void): void {
  const service = options.service;
  if (service === undefined || typeof service.login !== 'function') throw new AuthConfigError('service', 'an AuthService');
  const prefix = options.prefix ?? '/auth';
  const jwksMaxAge = options.jwksMaxAgeSec ?? 300;
  const route = { config: { auth: false as const }, attachValidation: true };

  app.post(`${prefix}/register`, { ...route, schema: { body: credentials } }, async (request, reply) => {
    const body = bodyOf(request);
    const user = await service.register(body.username, body.password);
    return reply.code(201).send(user);
  });

  app.post(`${prefix}/token`, { ...route, schema: { body: credentials } }, async (request, reply) => {
    const body = bodyOf(request);
    return noStore(reply).send(await service.login(body.username, body.password));
  });

  app.post(`${prefix}/refresh`, { ...route, schema: { body: refresh } }, async (request, reply) => {
    return noStore(reply).send(await service.refresh(bodyOf(request).refresh_token));
  });

  app.post(`${prefix}/logout`, { ...route, schema: { body: refresh } }, async (request, reply) => {
    await service.logout(bodyOf(request).refresh_token);
    return reply.code(204).send();
  });

  app.get(options.jwksPath ?? '/.well-known/jwks.json', { config: { auth: false } }, async (_request, reply) => {
    return reply.header('cache-control', `public, max-age=${jwksMaxAge}`).type('application/jwk-set+json').send(JSON.stringify(service.jwks()));
  });
  done();
}

/** The body as an object; the service validates each field. A schema failure names the field. */
function bodyOf(request: FastifyRequest): Body {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidAuthRequestError(undefined, 'the body must be a JSON object');
  const validation = (request.validationError as { validation?: { instancePath?: unknown; params?: { missingProperty?: unknown } }[] } | undefined)?.validation;
  const invalid = validation?.[0];
  if (invalid !== undefined) {
    const path = typeof invalid.instancePath === 'string' ? invalid.instancePath.replace(/^\//, '') : '';
    const missing = invalid.params?.missingProperty;
    const field = path !== '' ? path : typeof missing === 'string' ? missing : undefined;
    throw new InvalidAuthRequestError(field, field === undefined ? 'the body is invalid' : `${field} is missing or invalid`);
  }
  return body;
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}
