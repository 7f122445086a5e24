/** `@bulwark/http/testing`: helpers for testing services built on the kit — a real JWKS issuer on loopback and a problem renderer for bare Fastify apps. */
export { TestIssuer, problemErrorHandler, type SignOptions } from '../auth/testing.js';
