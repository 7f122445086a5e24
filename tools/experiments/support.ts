/**
 * What the load-driven experiments (metastable, hedging, bulkhead) share: a
 * front service that calls a dependency through a `@bulwark/resilience`
 * policy, the recovery-time rule, and small formatting helpers.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import type { CallContext, Policy } from '@bulwark/resilience';
import type { TimelinePoint } from '../load/types.js';

/** A non-2xx answer of the dependency, classified by the default policies through `status`. */
export class DependencyStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = 'DependencyStatusError';
  }
}

export interface Front {
  url: string;
  /** User requests the front received, and attempts it sent to the dependency. */
  readonly counts: { requests: number; attempts: number };
  close(): Promise<void>;
}

/**
 * A front service on a loopback port: every request calls `dependencyUrl`
 * once through `policy` and answers 200 when that call succeeded, 503 when it
 * failed. The call goes to the request's own path, so a tag in it (the load's
 * phase: `/baseline`) reaches the dependency, which counts calls by tag. Calls go through one undici pool with room for every outstanding
 * call (`connections`), so the front's own connection limit is never what
 * queues a call; an attempt the policy abandons is aborted, which closes its
 * connection (HTTP/1.1 has no other way to cancel a request).
 */
export async function startFront(dependencyUrl: string, policy: Policy, connections = 2_048): Promise<Front> {
  const origin = new URL(dependencyUrl).origin;
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 10_000, headersTimeout: 0, bodyTimeout: 0 });
  const counts = { requests: 0, attempts: 0 };
  const call = async (path: string, ctx: CallContext): Promise<void> => {
    counts.attempts++;
    const res = await pool.request({ method: 'GET', path, signal: ctx.signal });
    await res.body.dump();
    if (res.statusCode !== 200) throw new DependencyStatusError(res.statusCode);
  };
  const server: Server = createServer((req, res) => {
    counts.requests++;
    req.resume();
    const path = req.url ?? '/';
    policy.execute((ctx) => call(path, ctx)).then(
      () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      },
      () => {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('unavailable');
      },
    );
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.destroy();
    },
  };
}

export interface RecoveryRule {
  /** When the trigger ended, ms on the timeline's axis. */
  fromMs: number;
  /** End of the observed window (buckets must end by then). */
  toMs: number;
  /** Width of a timeline bucket, ms. */
  intervalMs: number;
  /** Successful answers per second before the trigger. */
  baselineGoodput: number;
  /** Share of the baseline a bucket must reach. Default 0.9. */
  fraction?: number;
  /** Buckets in a row that must reach it. Default 3. */
  consecutive?: number;
}

/**
 * Time to recover, in seconds: from the end of the trigger to the start of the
 * first of `consecutive` (3) timeline buckets in a row whose goodput is at
 * least `fraction` (90 %) of the baseline's; `null` when that never happens in
 * the window. A bucket counts from the one holding the trigger's end (the
 * load generator's phase starts are a few ms off the bucket grid), and only
 * whole buckets of the window count.
 */
export function recoverySeconds(timeline: readonly TimelinePoint[], rule: RecoveryRule): number | null {
  const fraction = rule.fraction ?? 0.9;
  const consecutive = rule.consecutive ?? 3;
  const threshold = fraction * rule.baselineGoodput * (rule.intervalMs / 1000);
  const first = Math.floor(rule.fromMs / rule.intervalMs) * rule.intervalMs;
  const buckets = timeline.filter((b) => b.tMs >= first && b.tMs + rule.intervalMs <= rule.toMs + 1).sort((a, b) => a.tMs - b.tMs);
  for (let i = 0; i + consecutive <= buckets.length; i++) {
    const run = buckets.slice(i, i + consecutive);
    const contiguous = run.every((b, k) => b.tMs === (buckets[i]?.tMs ?? 0) + k * rule.intervalMs);
    if (contiguous && run.every((b) => b.ok >= threshold)) return round(Math.max(0, ((buckets[i]?.tMs ?? 0) - rule.fromMs) / 1000), 2);
  }
  return null;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** A ratio rounded to 3 decimals; 0 when the denominator is 0. */
export function ratio(a: number, b: number): number {
  return b === 0 ? 0 : round(a / b, 3);
}

/** A Markdown table. */
export function table(headers: readonly string[], align: string, rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>): string {
  const cell = (v: string | number | null | undefined): string => (v === null || v === undefined ? '—' : String(v));
  return [`| ${headers.join(' | ')} |`, `| ${align.split('').map((a) => (a === 'r' ? '---:' : '---')).join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** The nearest-rank p-th percentile (0..100) of `values`; 0 when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}
