/**
 * Bearer authentication for Fastify: reads `Authorization: Bearer <jwt>`,
 * verifies it with a `JwtVerifier`, sets `request.user`, and enforces the
 * route's requirements — all in an `onRequest` hook, so an unauthenticated
 * request is refused before its body is even read and its handler never runs.
 *
 * Per route, `config.auth` says what is required:
 *
 * | `config.auth`                          | without a token | bad token | valid token lacking it |
 * | -------------------------------------- | --------------- | --------- | ---------------------- |
 * | `false`                                | runs, user null | runs (token ignored) | — |
 * | `'optional'`                           | runs, user null | 401       | —                      |
 * | `true` (the default, see `defaultAuth`) | 401            | 401       | —                      |
 * | `{ scopes: [...] }` (all of them)      | 401             | 401       | 403 insufficient-scope |
 * | `{ roles: [...] }` (any one of them)   | 401             | 401       | 403 forbidden          |
 *
 * `requireAuth({ roles, scopes })` gives the same checks as a `preHandler`,
 * for routes whose requirements are computed or shared.
 *
 * The plugin is wrapped by fastify-plugin: its hook applies to the context it
 * is registered in. Register it inside an encapsulated plugin to protect only
 * that plugin's routes, or at the root with `defaultAuth: 'optional'` and mark
 * protected routes; health and metrics routes take `config: { auth: false }`.
 *
 * @example
 * ```ts
 * await app.register(bearerAuth, { verifier });
 * app.post('/orders', { config: { auth: { scopes: ['orders:write'] } } }, (req) => createOrder(req.user!.sub));
 * app.get('/admin', { preHandler: requireAuth({ roles: ['admin'] }) }, handler);
 * ```
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import { AuthConfigError, ForbiddenError, InsufficientScopeError, UnauthenticatedError } from './errors.js';
import type { AuthUser, JwtVerifier } from './jwt-verifier.js';

/** What a route requires: `false` none, `'optional'` a valid token if one is sent, `true` any valid token, or roles/scopes. */
export type RouteAuth = boolean | 'optional' | AuthRequirement;

/** Requirements beyond a valid token. */
export interface AuthRequirement {
  /** Every one of these scopes. */
  scopes?: readonly string[];
  /** At least one of these roles. */
  roles?: readonly string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated subject, or `null` on anonymous requests. Set by `bearerAuth`. */
    user: AuthUser | null;
  }
  interface FastifyContextConfig {
    /** Authentication and authorisation for this route (see `bearerAuth`). */
    auth?: RouteAuth;
  }
}

export interface BearerAuthOptions {
  verifier: JwtVerifier;
  /** What routes without `config.auth` require. Default `true` (a valid token): secure unless a route opts out. */
  defaultAuth?: RouteAuth;
}

const BEARER = /^Bearer +([^\s]+) *$/i;

function bearerAuthPlugin(app: FastifyInstance, options: BearerAuthOptions, done: (error?: Error) => void): void {
  const verifier = options.verifier;
  if (verifier === undefined || typeof verifier.verify !== 'function') throw new AuthConfigError('verifier', 'a JwtVerifier');
  const defaultAuth = options.defaultAuth ?? true;
  checkRouteAuth(defaultAuth, 'defaultAuth');
  if (!app.hasRequestDecorator('user')) app.decorateRequest('user', null);
  app.addHook('onRoute', (route) => {
    const auth = (route.config as { auth?: unknown } | undefined)?.auth;
    if (auth !== undefined) checkRouteAuth(auth, `route ${route.method.toString()} ${route.url} config.auth`);
  });
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const auth = request.routeOptions.config.auth ?? defaultAuth;
    if (auth === false) return;
    request.user = await authenticate(verifier, request, auth === 'optional');
    if (typeof auth === 'object') authorize(request.user, auth);
  });
  done();
}

/**
 * Verifies the request's bearer token. Returns `null` when none was sent and
 * `optional` is true; throws `UnauthenticatedError` when none was sent and it
 * is required, and the verifier's error when one was sent and is bad.
 */
export async function authenticate(verifier: JwtVerifier, request: FastifyRequest, optional = false): Promise<AuthUser | null> {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    if (optional) return null;
    throw new UnauthenticatedError();
  }
  const match = BEARER.exec(header);
  if (match === null) {
    // Another scheme (Basic, ...) is not ours to judge on an optional route.
    if (optional && !/^bearer\b/i.test(header)) return null;
    throw new UnauthenticatedError();
  }
  return verifier.verify(match[1] as string);
}

/** Throws the 401 or 403 error for `user` against `requirement`. */
export function authorize(user: AuthUser | null, requirement: AuthRequirement): asserts user is AuthUser {
  if (user === null) throw new UnauthenticatedError();
  const roles = requirement.roles;
  if (roles !== undefined && roles.length > 0 && !roles.some((r) => user.roles.includes(r))) throw new ForbiddenError();
  const scopes = requirement.scopes;
  if (scopes !== undefined && scopes.some((s) => !user.scopes.includes(s))) throw new InsufficientScopeError(scopes);
}

/**
 * A `preHandler` that requires an authenticated user with the given roles
 * (any one) and scopes (all). Works on routes where `bearerAuth` ran
 * (`config.auth` of `true` or `'optional'`).
 */
export function requireAuth(requirement: AuthRequirement = {}): preHandlerHookHandler {
  checkRouteAuth(requirement, 'requireAuth');
  return function requireAuthHook(request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void {
    try {
      authorize(request.user ?? null, requirement);
      done();
    } catch (error) {
      done(error as Error);
    }
  };
}

function checkRouteAuth(value: unknown, option: string): void {
  if (value === true || value === false || value === 'optional') return;
  if (typeof value === 'object' && value !== null) {
    const { scopes, roles } = value as AuthRequirement;
    for (const [name, list] of [['scopes', scopes], ['roles', roles]] as const) {
      if (list !== undefined && (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s === '' || /\s|"/.test(s)))) {
        throw new AuthConfigError(`${option}.${name}`, 'an array of non-empty strings without spaces or quotes');
      }
    }
    return;
  }
  throw new AuthConfigError(option, "true, false, 'optional' or { scopes?, roles? }");
}

/** The Fastify plugin (see the module comment). */
export const bearerAuth = fp(bearerAuthPlugin, { fastify: '5.x', name: '@bulwark/http/bearer-auth' });
