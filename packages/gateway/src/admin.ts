/**
 * The admin listener: a separate port, every request authenticated with a
 * JWT carrying the admin scope (default `gateway:admin`). JSON views of the
 * routes, the upstreams with each instance's health and ejection state, the
 * breakers, the counters; and `POST /admin/reload`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isAuthError } from '@bulwark/http/auth';
import { GatewayConfigError } from './config.js';
import { sendProblem } from './problems.js';
import type { Runtime } from './runtime.js';

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

async function handle(runtime: Runtime, scope: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const header = req.headers.authorization;
  const tokens = runtime.table.tokens;
  if (tokens === undefined || header === undefined || header.slice(0, 7).toLowerCase() !== 'bearer ') {
    sendProblem(res, 'gateway-unauthenticated', 'a bearer token with the admin scope is required', { 'www-authenticate': 'Bearer' });
    return;
  }
  try {
    const user = await tokens.verify(header.slice(7).trim());
    if (!user.scopes.includes(scope)) {
      sendProblem(res, 'gateway-forbidden', `missing scope ${scope}`, { 'www-authenticate': `Bearer error="insufficient_scope", scope="${scope}"` });
      return;
    }
  } catch (error) {
    if (isAuthError(error) && error.status === 503) sendProblem(res, 'gateway-auth-unavailable', undefined, { 'retry-after': '1' });
    else sendProblem(res, 'gateway-invalid-token', undefined, { 'www-authenticate': 'Bearer error="invalid_token"' });
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  const method = req.method ?? 'GET';
  if (method === 'GET' && path === '/admin/routes') return json(res, 200, { version: runtime.table.version, routes: runtime.routesView() });
  if (method === 'GET' && path === '/admin/upstreams') return json(res, 200, runtime.upstreamsView());
  if (method === 'GET' && path === '/admin/breakers') return json(res, 200, runtime.breakersView());
  if (method === 'GET' && path === '/admin/stats') return json(res, 200, runtime.statsView());
  if (method === 'POST' && path === '/admin/reload') {
    req.resume();
    try {
      await runtime.reload();
      return json(res, 200, { reloaded: true, version: runtime.table.version, routes: runtime.table.list.length });
    } catch (error) {
      const issues = error instanceof GatewayConfigError ? error.issues : [(error as Error).message];
      sendProblem(res, 'gateway-bad-request', 'reload failed; the running configuration is unchanged', undefined, { issues, version: runtime.table.version });
      return;
    }
  }
  sendProblem(res, 'gateway-route-not-found', `no admin endpoint ${method} ${path}`);
}

/** Starts the admin listener. */
export async function startAdmin(runtime: Runtime, port: number, host: string, scope: string): Promise<Server> {
  const server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 30_000 }, (req, res) => {
    handle(runtime, scope, req, res).catch((error: unknown) => {
      runtime.onError(error);
      sendProblem(res, 'gateway-internal');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
