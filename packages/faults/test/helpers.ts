/** Test support for `@bulwark/faults`: real Fastify servers on ephemeral ports and polling without timing assertions. */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';

/** Polls `condition` until it holds; fails after `timeoutMs` (generous: a slow machine is not a failure). */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface TestServer {
  app: FastifyInstance;
  url: string;
  /** Requests that reached a handler, by path. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

/**
 * A Fastify server on 127.0.0.1:0 with `setup` run before its routes: every
 * `GET|POST /...` route under `paths` answers `{ ok: true, path }` and counts the hit.
 */
export async function testServer(setup: (app: FastifyInstance) => Promise<void> | void, paths: readonly string[] = ['/*']): Promise<TestServer> {
  const app = Fastify();
  const hits = new Map<string, number>();
  await setup(app);
  for (const path of paths) {
    app.route({
      method: ['GET', 'POST', 'PUT', 'DELETE'],
      url: path,
      handler: (request) => {
        const p = request.url.split('?')[0] as string;
        hits.set(p, (hits.get(p) ?? 0) + 1);
        return Promise.resolve({ ok: true, path: p });
      },
    });
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, hits, close: () => app.close() };
}

/** The code of a network error (its own, else its cause's). */
export function codeOf(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
}

/** A promise's outcome, captured at once (so a rejection is never "unhandled" while the test does other things). */
export function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** Asserts the settled outcome is a failure whose code is one of `codes`. */
export function failedWith(outcome: { ok: boolean; error?: unknown }, codes: readonly string[]): boolean {
  return !outcome.ok && codes.includes(codeOf(outcome.error) ?? '');
}
