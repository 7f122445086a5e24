/**
 * A local HTTP server that misbehaves on purpose, seeded so every run of the
 * demo sees the same faults. Routes:
 *   GET /flaky     fails with 503 (and `Retry-After: 0`) at `failureRate`
 *   GET /hang      never answers a share of requests (`hangRate`), answers the rest
 *   GET /down      500 while `down` is true, 200 otherwise
 *   GET /slow      answers after `slowMs`
 *   GET /budget    echoes the deadline budget the caller sent
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEADLINE_HEADER, incomingBudgetMs } from '@bulwark/resilience';
import { seededRandom } from '@bulwark/resilience/testing';

export interface FlakyServer {
  url: string;
  state: { failureRate: number; hangRate: number; down: boolean; slowMs: number; inFlight: number; maxInFlight: number; requests: Record<string, number> };
  close(): Promise<void>;
}

export async function startFlakyServer(seed = 7): Promise<FlakyServer> {
  const random = seededRandom(seed);
  const state = { failureRate: 0.3, hangRate: 0.2, down: false, slowMs: 50, inFlight: 0, maxInFlight: 0, requests: {} as Record<string, number> };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    state.requests[path] = (state.requests[path] ?? 0) + 1;
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    switch (path) {
      case '/flaky':
        if (random() < state.failureRate) reply(503, { error: 'unavailable' }, { 'retry-after': '0' });
        else reply(200, { ok: true });
        return;
      case '/hang':
        if (random() < state.hangRate) return; // never answers; the client's timeout must save it
        reply(200, { ok: true });
        return;
      case '/down':
        reply(state.down ? 500 : 200, { down: state.down });
        return;
      case '/slow':
        state.maxInFlight = Math.max(state.maxInFlight, ++state.inFlight);
        setTimeout(() => {
          state.inFlight--;
          reply(200, { ok: true });
        }, state.slowMs);
        return;
      case '/budget':
        reply(200, { receivedMs: incomingBudgetMs(req.headers[DEADLINE_HEADER], { marginMs: 5, maxMs: 10_000 }) });
        return;
      default:
        reply(404, { error: 'not found' });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
