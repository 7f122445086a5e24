/**
 * `@bulwark/http/auth`: verifying access tokens (JWT via jose, per-issuer
 * algorithm allow-lists, cached JWKS with rotation), a Fastify plugin that
 * authenticates requests and enforces route roles and scopes (401 vs 403),
 * and an auth module that issues short-lived access tokens and rotating
 * refresh tokens with reuse detection, with users and scrypt passwords in the
 * service's own database.
 *
 * @example
 * ```ts
 * import { bearerAuth, JwtVerifier } from '@bulwark/http/auth';
 *
 * const verifier = new JwtVerifier({ issuers: [{ issuer: 'https://auth.shop.local', audience: 'orders', jwksUri: 'https://auth.shop.local/.well-known/jwks.json' }] });
 * await app.register(bearerAuth, { verifier });
 * app.post('/orders', { config: { auth: { scopes: ['orders:write'] } } }, (req) => place(req.user!.sub, req.body));
 * ```
 */
export * from './errors.js';
export { type WallClock, systemWallClock } from './clock.js';
export { JwtVerifier, ALLOWED_ALGORITHMS, type AllowedAlgorithm, type IssuerConfig, type JwtVerifierOptions, type AuthUser } from './jwt-verifier.js';
export { JwksCache, type JwksCacheOptions, type JwksCacheStats } from './jwks-cache.js';
export { bearerAuth, requireAuth, authenticate, authorize, type BearerAuthOptions, type RouteAuth, type AuthRequirement } from './bearer-auth.js';
export { SigningKeyRing, type SigningKeyRingOptions, type SigningAlgorithm, type ActiveKey } from './signing-keys.js';
export { PasswordHasher, DEFAULT_SCRYPT_PARAMS, type PasswordHasherOptions, type ScryptParams } from './password.js';
export { authMigrations, type AuthTables } from './schema.js';
export { AuthService, createAuthService, normalizeUsername, type AuthServiceOptions, type TokenSet, type RegisteredUser } from './auth-service.js';
export { authRoutes, type AuthRoutesOptions } from './auth-routes.js';
