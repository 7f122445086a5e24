/**
 * Test support for the invariant checker and the soak: a monolith shop in a
 * temp dir on an ephemeral port, and a small HTTP client for its public API
 * (real tokens, Idempotency-Keys) and its internal routes (the internal key).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config.js';
import { INTERNAL_KEY_HEADER } from '../platform.js';
import { startShop, type Shop } from '../shop.js';
import type { InvariantTarget } from './invariants.js';

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export interface ApiOptions {
  token?: string;
  key?: string;
  body?: unknown;
  internal?: boolean;
  timeoutMs?: number;
}

export interface TestShop {
  shop: Shop;
  dir: string;
  target: InvariantTarget;
  api(method: string, path: string, options?: ApiOptions): Promise<Answer>;
  /** A token for `username` (registered first unless it is the demo user). */
  login(username: string, password: string, register?: boolean): Promise<string>;
  close(): Promise<void>;
}

export async function startTestShop(overrides: Record<string, unknown> = {}, prefix = 'shop-invariants-'): Promise<TestShop> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let config: ReturnType<typeof loadConfig>;
  let shop: Shop;
  try {
    config = loadConfig({
      env: {},
      overrides: {
        dataDir: dir,
        port: 0,
        logLevel: 'silent',
        payments: { latencyMs: 1, latencyJitterMs: 2, declineRate: 0, errorRate: 0 },
        recommendations: { latencyMs: 0, errorRate: 0 },
        orders: { sagaDeadlineMs: 30_000, stepAttemptTimeoutMs: 5_000 },
        ...overrides,
      },
    });
    shop = await startShop(config);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const target: InvariantTarget = { url: shop.url, internalKey: config.internalKey };

  async function api(method: string, path: string, options: ApiOptions = {}): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (options.key !== undefined) headers['idempotency-key'] = options.key;
    if (options.internal === true) headers[INTERNAL_KEY_HEADER] = config.internalKey;
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${shop.url}${path}`, { method, headers, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000), ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  async function login(username: string, password: string, register = false): Promise<string> {
    if (register) {
      const r = await api('POST', '/api/users/register', { body: { username, password } });
      if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const r = await api('POST', '/api/users/token', { body: { username, password } });
    if (r.status !== 200) throw new Error(`token ${username}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.access_token as string;
  }

  return {
    shop,
    dir,
    target,
    api,
    login,
    close: async () => {
      await shop.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls an order (as its owner) until it is CONFIRMED or CANCELLED; returns its final view. */
export async function settleOrder(t: TestShop, orderId: string, token: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await t.api('GET', `/api/orders/${orderId}`, { token });
    if (r.body.terminal === true || Date.now() > until) return r.body;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}
