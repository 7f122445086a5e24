/**
 * Experiment `amplification`: retries multiply down a call chain.
 *
 * Three real HTTP servers on ephemeral ports form the chain user → A → B → C.
 * Every caller (the user's client, A, B) calls the next hop through a
 * `@bulwark/resilience` pipeline; C answers 503 to everything during the
 * measured phase. Configurations:
 *
 * - `every-layer`: retry (3 attempts) in all three callers: C sees 3³ = 27 calls per user request;
 * - `top-only`: retry (3 attempts) in the user's client only: 3;
 * - `top-budget`: the same, with a shared `RetryBudget` (ratio 10 %, a floor of one retry per
 *   window) after a warm-up of successful requests: about 1 + ratio.
 *
 * A hop that gives up answers 503 itself, so the failure stays transient all the way up,
 * which is the worst case for amplification.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, retry, timeout, RetryBudget, type CallContext, type Policy } from '@bulwark/resilience';
import { barChart } from '../scenario/svg.js';

export type AmplificationConfig = 'every-layer' | 'top-only' | 'top-budget';
export const amplificationConfigs: readonly AmplificationConfig[] = ['every-layer', 'top-only', 'top-budget'];

export interface AmplificationOptions {
  /** Failing user requests measured per configuration. Default 100. */
  requests?: number;
  /** Successful user requests before the failure, for the budget to learn the traffic. Default 20. */
  warmup?: number;
  /** User requests in flight at once. Default 8. */
  concurrency?: number;
  /** Attempts of a retrying layer. Default 3. */
  maxAttempts?: number;
  /** Retry budget ratio of `top-budget`. Default 0.1. */
  budgetRatio?: number;
  /** Retries the budget grants per second whatever the traffic. Default 0.1 (one per 10 s window). */
  budgetMinRetriesPerSecond?: number;
  /** Configurations to run. Default all three. */
  configs?: readonly AmplificationConfig[];
}

export interface AmplificationRow {
  config: AmplificationConfig;
  /** Failing user requests measured. */
  requests: number;
  /** Calls that reached each hop during the measured phase. */
  callsA: number;
  callsB: number;
  callsC: number;
  /** Calls reaching C per user request. */
  perRequest: number;
  /** User requests that failed (all of them: C is down). */
  failed: number;
  /** Upper bound the budget allows (only `top-budget`): 1 + (ratio · requests seen + floor) / requests. */
  bound?: number;
}

export interface AmplificationResult {
  maxAttempts: number;
  warmup: number;
  budgetRatio: number;
  rows: AmplificationRow[];
}

/** A non-2xx answer, classified by the default policies through `status`. */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = 'HttpStatusError';
  }
}

async function get(url: string, ctx: CallContext): Promise<void> {
  const res = await fetch(url, { signal: ctx.signal });
  await res.arrayBuffer();
  if (!res.ok) throw new HttpStatusError(res.status);
}

interface Hop {
  url: string;
  server: Server;
  /** Requests this hop received. */
  counter: { calls: number };
}

/** A local server on an ephemeral port that counts its requests and answers through `handle`. */
async function hop(handle: (res: ServerResponse) => void): Promise<Hop> {
  const counter = { calls: 0 };
  const server = createServer((_req, res) => {
    counter.calls++;
    handle(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/`, counter };
}

function reply(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(status === 200 ? 'ok' : 'unavailable');
}

/** A hop that forwards every request to `next` through `policy`, and answers 503 when that call fails. */
function forwarder(next: string, policy: Policy): Promise<Hop> {
  return hop((res) => {
    policy.execute((ctx) => get(next, ctx)).then(
      () => reply(res, 200),
      () => reply(res, 503),
    );
  });
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
}

/** Runs `n` calls of `fn`, `concurrency` at a time. */
async function pool(n: number, concurrency: number, fn: () => Promise<void>): Promise<void> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < n) {
      started++;
      await fn();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

export async function runConfig(config: AmplificationConfig, options: AmplificationOptions = {}): Promise<AmplificationRow> {
  const requests = options.requests ?? 100;
  const warmup = options.warmup ?? 20;
  const concurrency = options.concurrency ?? 8;
  const maxAttempts = options.maxAttempts ?? 3;
  const ratio = options.budgetRatio ?? 0.1;
  const minRetriesPerSecond = options.budgetMinRetriesPerSecond ?? 0.1;
  const windowMs = 10_000;
  // Short real backoff (full jitter, 1–8 ms) keeps the run quick; the counts do not depend on it.
  const backoff = { baseMs: 1, capMs: 8 };
  // A retrying layer: retry → timeout per attempt; a plain layer: the timeout only.
  const layer = (retrying: boolean, budget?: RetryBudget): Policy =>
    retrying ? pipeline({ retry: retry({ maxAttempts, backoff, budget }), timeout: timeout(5_000) }) : pipeline({ timeout: timeout(5_000) });

  const budget = config === 'top-budget' ? new RetryBudget({ ratio, minRetriesPerSecond, windowMs }) : undefined;
  const everyLayer = config === 'every-layer';

  let failing = false;
  const hopC = await hop((res) => reply(res, failing ? 503 : 200));
  const hopB = await forwarder(hopC.url, layer(everyLayer));
  const hopA = await forwarder(hopB.url, layer(everyLayer));
  const user = layer(true, budget);
  let failed = 0;
  const callA = (): Promise<void> =>
    user.execute((ctx) => get(hopA.url, ctx)).then(undefined, () => {
      failed++;
    });

  try {
    if (warmup > 0) await pool(warmup, concurrency, callA);
    if (failed > 0) throw new Error(`amplification: ${failed} warm-up requests failed`);
    hopA.counter.calls = hopB.counter.calls = hopC.counter.calls = 0;
    failing = true;
    await pool(requests, concurrency, callA);
  } finally {
    await Promise.all([close(hopA.server), close(hopB.server), close(hopC.server)]);
  }

  const row: AmplificationRow = {
    config,
    requests,
    callsA: hopA.counter.calls,
    callsB: hopB.counter.calls,
    callsC: hopC.counter.calls,
    perRequest: Math.round((hopC.counter.calls / requests) * 1000) / 1000,
    failed,
  };
  if (budget !== undefined) {
    const floor = Math.floor((minRetriesPerSecond * windowMs) / 1000);
    row.bound = Math.round((1 + (ratio * (warmup + requests) + floor) / requests) * 1000) / 1000;
  }
  return row;
}

export async function runAmplification(options: AmplificationOptions = {}): Promise<AmplificationResult> {
  const rows: AmplificationRow[] = [];
  for (const config of options.configs ?? amplificationConfigs) rows.push(await runConfig(config, options));
  return { maxAttempts: options.maxAttempts ?? 3, warmup: options.warmup ?? 20, budgetRatio: options.budgetRatio ?? 0.1, rows };
}

export function amplificationFigures(result: AmplificationResult): Record<string, number | string> {
  const figures: Record<string, number | string> = { experiment: 'amplification', max_attempts: result.maxAttempts, warmup: result.warmup, budget_ratio: result.budgetRatio };
  for (const row of result.rows) {
    const key = row.config.replaceAll('-', '_');
    figures[`${key}_requests`] = row.requests;
    figures[`${key}_c_calls`] = row.callsC;
    figures[`${key}_c_per_request`] = row.perRequest;
  }
  return figures;
}

export function amplificationTable(result: AmplificationResult): string {
  return [
    `amplification: user → A → B → C over local HTTP, C answers 503; ${result.maxAttempts} attempts where a layer retries`,
    '',
    '| configuration | user requests | calls at A | calls at B | calls at C | C calls / request | bound |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...result.rows.map((r) => `| ${r.config} | ${r.requests} | ${r.callsA} | ${r.callsB} | ${r.callsC} | ${r.perRequest} | ${r.bound ?? ''} |`),
  ].join('\n');
}

export function amplificationCharts(result: AmplificationResult): Record<string, string> {
  return {
    'amplification-calls.svg': barChart({
      title: `Calls reaching C per failing user request (${result.maxAttempts} attempts where a layer retries)`,
      yLabel: 'calls at C / user request (log scale)',
      yLog: true,
      groups: result.rows.map((r) => ({ label: r.config, bars: [{ name: 'calls at C / request', value: r.perRequest }] })),
    }),
  };
}
