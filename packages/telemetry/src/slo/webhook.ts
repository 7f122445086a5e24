/**
 * Alert delivery to a webhook, in the background.
 *
 * `notify()` only appends to a bounded queue and returns: the engine's
 * evaluation (and so `record()`, which never waits for anything) cannot be
 * slowed by a slow or dead receiver. One worker drains the queue in order,
 * each delivery through a `@bulwark/resilience` pipeline: retry with
 * exponential backoff and full jitter (honouring `Retry-After`) around a
 * per-attempt timeout. When the queue is full the new alert is dropped and
 * counted (`stats().dropped`), because an alerting path that grows without
 * bound during an outage becomes the outage.
 *
 * Every POST carries `Idempotency-Key: <alert id>:<state>`, the same on every
 * attempt, so a receiver can drop the duplicates retries may produce.
 */
import { isTransient, parseRetryAfter, pipeline, retry, systemClock, timeout, type BackoffOptions, type Clock, type Pipeline } from '@bulwark/resilience';
import { request } from 'undici';
import type { AlertSink, SloAlert } from './alert.js';
import { WebhookFailedError, WebhookRejectedError, isSloError } from './errors.js';
import { Emitter } from './events.js';

/** One POST, as the transport sees it. */
export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

/** The answer a transport reports: the status and, optionally, headers (for `Retry-After`). */
export interface WebhookResponse {
  status: number;
  headers?: Record<string, string | string[] | undefined>;
}

/** Sends one POST. The default uses undici; tests and custom channels (a queue, a chat API client) plug in here. */
export type WebhookTransport = (request: WebhookRequest) => Promise<WebhookResponse>;

export interface WebhookOptions {
  url: string;
  /** Extra headers (an auth token). */
  headers?: Record<string, string>;
  /** Alerts waiting beyond the one in flight. Default 1 000. */
  maxQueue?: number;
  /** Attempts per alert, the first included. Default 6. */
  maxAttempts?: number;
  /** Default `{ baseMs: 1_000, capMs: 60_000 }`, full jitter. */
  backoff?: BackoffOptions;
  /** Per attempt. Default 5 000 ms. */
  timeoutMs?: number;
  clock?: Clock;
  /** Jitter source in [0, 1). Default `Math.random`. */
  random?: () => number;
  transport?: WebhookTransport;
}

/** Counters of a webhook's life so far. */
export interface WebhookStats {
  /** Alerts waiting, not counting the one in flight. */
  queued: number;
  inFlight: boolean;
  delivered: number;
  /** Alerts given up on after the last attempt (or a non-retryable answer). */
  failed: number;
  /** Alerts refused because the queue was full or the webhook closed. */
  dropped: number;
  /** POSTs sent, retries included. */
  attempts: number;
}

export interface WebhookEvents {
  delivered: { url: string; alert: SloAlert; attempts: number };
  failed: { url: string; alert: SloAlert; attempts: number; error: unknown };
  dropped: { url: string; alert: SloAlert; reason: 'queue-full' | 'closed' };
}

/** The JSON body every POST carries. */
export interface WebhookPayload {
  kind: 'bulwark.slo.alert';
  version: 1;
  alert: SloAlert;
}

/** Delivers alert transitions to one URL in the background with retries; see the module comment. */
export class WebhookNotifier implements AlertSink {
  readonly url: string;
  readonly on: Emitter<WebhookEvents>['on'];
  private readonly events: Emitter<WebhookEvents>;
  private readonly headers: Record<string, string>;
  private readonly maxQueue: number;
  private readonly transport: WebhookTransport;
  private readonly policy: Pipeline;
  private readonly queue: SloAlert[] = [];
  private readonly counts = { delivered: 0, failed: 0, dropped: 0, attempts: 0 };
  private running = false;
  private closed = false;
  private readonly closing = new AbortController();
  private idleWaiters: (() => void)[] = [];

  constructor(options: WebhookOptions) {
    try {
      this.url = new URL(options.url).href;
    } catch {
      throw new TypeError(`webhook: url must be an absolute URL, got ${JSON.stringify(options.url)}`);
    }
    this.headers = { 'content-type': 'application/json', ...options.headers };
    this.maxQueue = options.maxQueue ?? 1_000;
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0) throw new TypeError(`webhook: maxQueue must be a non-negative integer, got ${String(options.maxQueue)}`);
    this.transport = options.transport ?? undiciTransport;
    const clock = options.clock ?? systemClock;
    this.policy = pipeline(
      retry({
        name: 'slo-webhook',
        maxAttempts: options.maxAttempts ?? 6,
        backoff: options.backoff ?? { baseMs: 1_000, capMs: 60_000 },
        clock,
        random: options.random,
        retryOn: isTransient,
      }),
      timeout(options.timeoutMs ?? 5_000, { name: 'slo-webhook', clock, propagate: false }),
    );
    this.events = new Emitter<WebhookEvents>(`webhook:${this.url}`);
    this.on = this.events.on.bind(this.events);
  }

  /** Queues a transition for delivery and returns at once; drops (and counts) it when the queue is full. */
  notify(alert: SloAlert): void {
    if (this.closed || this.queue.length >= this.maxQueue) {
      this.counts.dropped++;
      this.events.emit('dropped', { url: this.url, alert, reason: this.closed ? 'closed' : 'queue-full' });
      return;
    }
    this.queue.push(alert);
    if (!this.running) void this.drainQueue();
  }

  stats(): WebhookStats {
    return { queued: this.queue.length, inFlight: this.running, ...this.counts };
  }

  /** Resolves once the queue is empty and nothing is in flight (delivered or given up). */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops delivering: queued alerts are dropped, an attempt in flight is aborted. */
  close(): Promise<void> {
    this.closed = true;
    for (const alert of this.queue.splice(0)) {
      this.counts.dropped++;
      this.events.emit('dropped', { url: this.url, alert, reason: 'closed' });
    }
    this.closing.abort(new Error('webhook closed'));
    return this.idle();
  }

  private async drainQueue(): Promise<void> {
    this.running = true;
    try {
      for (let alert = this.queue.shift(); alert !== undefined; alert = this.queue.shift()) {
        await this.deliver(alert);
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private async deliver(alert: SloAlert): Promise<void> {
    const key = `${alert.id}:${alert.state}`;
    const body = JSON.stringify({ kind: 'bulwark.slo.alert', version: 1, alert } satisfies WebhookPayload);
    let attempts = 0;
    try {
      await this.policy.execute(
        async ({ signal }) => {
          attempts++;
          this.counts.attempts++;
          await this.post(body, key, signal);
        },
        { idempotencyKey: key, idempotent: false, signal: this.closing.signal },
      );
      this.counts.delivered++;
      this.events.emit('delivered', { url: this.url, alert, attempts });
    } catch (error) {
      this.counts.failed++;
      this.events.emit('failed', { url: this.url, alert, attempts, error });
    }
  }

  private async post(body: string, key: string, signal: AbortSignal): Promise<void> {
    let response: WebhookResponse;
    try {
      response = await this.transport({ url: this.url, headers: { ...this.headers, 'idempotency-key': key }, body, signal });
    } catch (error) {
      if (isSloError(error)) throw error;
      throw new WebhookFailedError(this.url, undefined, `not reached (${String(error)})`, { cause: error });
    }
    const { status } = response;
    if (status >= 200 && status < 300) return;
    if (status === 408 || status === 429 || status >= 500) {
      const header = response.headers?.['retry-after'];
      const value = Array.isArray(header) ? header[0] : header;
      const retryAfterMs = value === undefined ? undefined : parseRetryAfter(value);
      throw new WebhookFailedError(this.url, status, `answered ${status}`, { retryAfterMs });
    }
    throw new WebhookRejectedError(this.url, status);
  }
}

/** The default transport: an undici POST whose body is read to the end so the connection is reused. */
export const undiciTransport: WebhookTransport = async ({ url, headers, body, signal }) => {
  const response = await request(url, { method: 'POST', headers, body, signal });
  await response.body.dump();
  return { status: response.statusCode, headers: response.headers };
};

/**
 * A webhook for alert transitions.
 *
 * @example
 * ```ts
 * const engine = createSloEngine({ slos, sinks: [webhook({ url: 'https://hooks.example/slo' })] });
 * ```
 */
export function webhook(options: WebhookOptions): WebhookNotifier {
  return new WebhookNotifier(options);
}
