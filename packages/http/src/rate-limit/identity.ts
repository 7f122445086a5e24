/**
 * Who a request counts against: the JWT subject when authentication has set
 * `request.user.sub`, else the API key (hashed: raw keys never become store
 * keys), else the client IP (`request.ip`, which honours Fastify's
 * `trustProxy`).
 */
import { hash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

const MAX_CACHED = 1_024;

/** Builds the default identity function, reading API keys from `apiKeyHeader`. */
export function defaultIdentity(apiKeyHeader = 'x-api-key'): (request: FastifyRequest) => string {
  const header = apiKeyHeader.toLowerCase();
  // Hashing a key per request would put SHA-256 on the hot path; a bounded cache keeps it off.
  const hashed = new Map<string, string>();
  // The last client IP and its identity: consecutive requests (a keep-alive connection) get the same string
  // back, which the plugin and the store then compare and look up without building or hashing a new one.
  let lastIp: string | undefined;
  let lastIpIdentity = '';
  return function identityOf(request: FastifyRequest): string {
    const user = (request as { user?: unknown }).user;
    if (typeof user === 'object' && user !== null) {
      const sub = (user as { sub?: unknown }).sub;
      if (typeof sub === 'string' && sub !== '') return `sub:${sub}`;
    }
    const apiKey = request.headers[header];
    if (typeof apiKey === 'string' && apiKey !== '') {
      let digest = hashed.get(apiKey);
      if (digest === undefined) {
        if (hashed.size >= MAX_CACHED) hashed.clear();
        digest = hash('sha256', apiKey, 'base64url').slice(0, 22);
        hashed.set(apiKey, digest);
      }
      return `key:${digest}`;
    }
    const ip = request.ip;
    if (ip !== lastIp || lastIpIdentity === '') {
      lastIp = ip;
      lastIpIdentity = `ip:${ip}`;
    }
    return lastIpIdentity;
  };
}
