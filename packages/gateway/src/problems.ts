/**
 * The gateway's RFC 9457 problems: stable `type` URIs
 * (`https://bulwark.dev/problems/gateway-*`), written straight to a
 * `node:http` response (no framework on the data path).
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { problemTypeUri } from '@bulwark/http';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** One gateway problem type. */
export interface GatewayProblemType {
  readonly status: number;
  readonly title: string;
  readonly retryable: boolean;
}

export const gatewayProblemTypes = {
  'gateway-bad-request': { status: 400, title: 'Bad request', retryable: false },
  'gateway-bad-host': { status: 400, title: 'Invalid Host header', retryable: false },
  // 400 rather than 431: the issue asks for a plain 400 on every refused request; the type says why
  'gateway-header-too-large': { status: 400, title: 'Request headers too large', retryable: false },
  'gateway-request-timeout': { status: 408, title: 'Request timeout', retryable: true },
  'gateway-unknown-host': { status: 421, title: 'Misdirected request: unknown host', retryable: false },
  'gateway-route-not-found': { status: 404, title: 'No route matches the request', retryable: false },
  'gateway-unauthenticated': { status: 401, title: 'Authentication required', retryable: false },
  'gateway-invalid-token': { status: 401, title: 'Invalid access token', retryable: false },
  'gateway-forbidden': { status: 403, title: 'Forbidden', retryable: false },
  'gateway-rate-limited': { status: 429, title: 'Too many requests', retryable: true },
  'gateway-rate-limit-unavailable': { status: 503, title: 'Rate limit unavailable', retryable: true },
  'gateway-auth-unavailable': { status: 503, title: 'Token signing keys unavailable', retryable: true },
  'gateway-upstream-unavailable': { status: 503, title: 'Upstream unavailable', retryable: true },
  'gateway-bad-gateway': { status: 502, title: 'Bad gateway', retryable: true },
  'gateway-response-too-large': { status: 502, title: 'Upstream response too large', retryable: false },
  'gateway-timeout': { status: 504, title: 'Upstream timed out', retryable: true },
  'gateway-shutting-down': { status: 503, title: 'Gateway shutting down', retryable: true },
  'gateway-internal': { status: 500, title: 'Internal gateway error', retryable: true },
} as const satisfies Record<string, GatewayProblemType>;

export type GatewayProblemSlug = keyof typeof gatewayProblemTypes;

/** The problem document of `slug`. */
export function gatewayProblem(slug: GatewayProblemSlug, detail?: string, extra?: Record<string, unknown>): Record<string, unknown> {
  const t = gatewayProblemTypes[slug];
  const body: Record<string, unknown> = { type: problemTypeUri(slug), title: t.title, status: t.status };
  if (detail !== undefined) body.detail = detail;
  if (t.retryable) body.retryable = true;
  if (extra !== undefined) Object.assign(body, extra);
  return body;
}

/**
 * Sends the problem `slug` on `res` unless headers already went out (then
 * the response is cut: the client sees a truncated body, never a second head).
 */
export function sendProblem(res: ServerResponse, slug: GatewayProblemSlug, detail?: string, headers?: Record<string, string>, extra?: Record<string, unknown>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(gatewayProblem(slug, detail, extra));
  const out: Record<string, string | number> = { 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' };
  if (headers !== undefined) Object.assign(out, headers);
  res.writeHead(gatewayProblemTypes[slug].status, out);
  res.end(body);
}

/** Answers a problem on a raw socket (the parser refused the request) and closes it. */
export function sendProblemOnSocket(socket: Socket, slug: GatewayProblemSlug, detail?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const t = gatewayProblemTypes[slug];
  const body = JSON.stringify(gatewayProblem(slug, detail));
  socket.end(
    `HTTP/1.1 ${t.status} ${t.title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
