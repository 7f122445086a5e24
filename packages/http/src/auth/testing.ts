/**
 * Test support for code that verifies tokens: a real issuer on loopback that
 * serves its JWKS over HTTP (counting fetches), signs tokens with any claims
 * and headers, and rotates keys; and a minimal problem renderer standing in
 * for the service kit's, for testing auth plugins in isolation.
 *
 * @example
 * ```ts
 * const issuer = await TestIssuer.start();
 * const verifier = new JwtVerifier({ issuers: [{ issuer: issuer.issuer, audience: 'api', jwksUri: issuer.jwksUri }] });
 * const token = await issuer.sign({ sub: 'u1', aud: 'api', scope: 'orders:write' });
 * ```
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWTPayload, type JWTHeaderParameters } from 'jose';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { SigningKeyRing, type SigningAlgorithm } from './signing-keys.js';

export interface SignOptions {
  /** Seconds from now (on `nowMs`) until `exp`. Default 300. Pass `null` to leave `exp` out. */
  expiresInSec?: number | null;
  /** Epoch milliseconds taken as "now" for `iat` and `exp`. Default `Date.now()`. */
  nowMs?: number;
  /** Header fields to add or override (`kid`, `typ`, ...). */
  header?: Partial<JWTHeaderParameters>;
}

export class TestIssuer {
  /** Requests served by the JWKS endpoint. */
  jwksRequests = 0;
  /** When set, the JWKS endpoint answers this status instead of the keys. */
  failWith: number | undefined;

  private constructor(
    private readonly server: Server,
    readonly ring: SigningKeyRing,
    readonly issuer: string,
    readonly jwksUri: string,
  ) {}

  /** Starts the issuer on a free loopback port. */
  static async start(options: { alg?: SigningAlgorithm; issuer?: string } = {}): Promise<TestIssuer> {
    const ring = await SigningKeyRing.generate({ alg: options.alg ?? 'EdDSA', retainMs: 3_600_000 });
    const holder: { self?: TestIssuer } = {};
    const server = createServer((req, res) => {
      const issuer = holder.self as TestIssuer;
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      issuer.jwksRequests++;
      if (issuer.failWith !== undefined) {
        res.writeHead(issuer.failWith).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(ring.jwks()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    holder.self = new TestIssuer(server, ring, options.issuer ?? base, `${base}/.well-known/jwks.json`);
    return holder.self;
  }

  /** Signs `claims` (with `iss` defaulted to this issuer) with the active key. */
  async sign(claims: JWTPayload, options: SignOptions = {}): Promise<string> {
    const key = this.ring.current();
    const now = Math.floor((options.nowMs ?? Date.now()) / 1000);
    const payload: JWTPayload = { iss: this.issuer, iat: now, ...claims };
    if (options.expiresInSec !== null && payload.exp === undefined) payload.exp = now + (options.expiresInSec ?? 300);
    return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, ...options.header }).sign(key.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A Fastify error handler that renders errors the way the service kit does:
 * `toProblem()` as `application/problem+json` with the error's `headers`;
 * other errors with a `statusCode` as a bare problem of that status; the rest as 500.
 */
export function problemErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const withProblem = error as FastifyError & { toProblem?: () => { status: number }; headers?: Record<string, string> };
  if (typeof withProblem.toProblem === 'function') {
    const problem = withProblem.toProblem();
    if (withProblem.headers !== undefined) void reply.headers(withProblem.headers);
    return reply.code(problem.status).type('application/problem+json').send(problem);
  }
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
  return reply.code(status).type('application/problem+json').send({ type: 'about:blank', title: status === 500 ? 'Internal Server Error' : error.code, status });
}
