/**
 * One AMQP connection that comes back: when RabbitMQ closes it (a restart,
 * a network cut, a missed heartbeat), it reconnects with capped exponential
 * backoff and jitter, runs `setup` (re-declaring the exchanges), and bumps
 * `generation`, so channels and declarations of the old connection are known
 * to be gone. Subscriptions notice through their channel's `close` event and
 * resume on the new connection.
 */
import { connect, type ChannelModel } from 'amqplib';

export interface ReconnectOptions {
  /** First wait before reconnecting. Default 100 ms. */
  initialDelayMs?: number;
  /** Longest wait between attempts. Default 5 000 ms. */
  maxDelayMs?: number;
}

export interface RabbitConnectionOptions {
  url: string;
  connectTimeoutMs: number;
  connectionName: string;
  reconnect: Required<ReconnectOptions>;
  /** Runs on every new connection before it is handed out. */
  setup(model: ChannelModel): Promise<void>;
  onError(error: Error): void;
}

export interface LiveConnection {
  readonly model: ChannelModel;
  /** Increments on every reconnection. */
  readonly generation: number;
}

/** `amqp://guest:***@127.0.0.1:5672`: the URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}

/** Exponential backoff with ±20 % jitter, capped. */
export function backoffDelayMs(attempt: number, options: Required<ReconnectOptions>): number {
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export class RabbitConnection {
  private live: LiveConnection | undefined;
  private generation = 0;
  private closed = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private waiters: { resolve(live: LiveConnection): void; reject(error: Error): void }[] = [];

  private constructor(private readonly options: RabbitConnectionOptions) {}

  /** Connects once; rejects naming RabbitMQ when it cannot be reached. */
  static async open(options: RabbitConnectionOptions): Promise<RabbitConnection> {
    const connection = new RabbitConnection(options);
    try {
      await connection.connectOnce();
    } catch (error) {
      throw new Error(`RabbitMQ unreachable at ${redactUrl(options.url)}: ${(error as Error).message}`, { cause: error });
    }
    return connection;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Connected right now (not closed, not reconnecting). */
  get isLive(): boolean {
    return this.live !== undefined;
  }

  /** The live connection; while reconnecting, waits for it up to `timeoutMs`. */
  async get(timeoutMs: number): Promise<LiveConnection> {
    if (this.closed) throw new Error('rabbitmq: the transport is closed');
    if (this.live !== undefined) return this.live;
    return new Promise<LiveConnection>((resolve, reject) => {
      const waiter = {
        resolve: (live: LiveConnection) => {
          clearTimeout(timer);
          resolve(live);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`rabbitmq: no connection to RabbitMQ at ${redactUrl(this.options.url)} within ${timeoutMs} ms (reconnecting)`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    const error = new Error('rabbitmq: the transport is closed');
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    const live = this.live;
    this.live = undefined;
    if (live !== undefined) await live.model.close().catch(() => undefined);
  }

  private async connectOnce(): Promise<void> {
    const model = await connect(this.options.url, {
      timeout: this.options.connectTimeoutMs,
      clientProperties: { connection_name: this.options.connectionName },
    });
    model.on('error', (error: Error) => this.options.onError(new Error(`rabbitmq: connection error: ${error.message}`, { cause: error })));
    try {
      await this.options.setup(model);
    } catch (error) {
      await model.close().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await model.close().catch(() => undefined);
      return;
    }
    const live = { model, generation: ++this.generation };
    model.on('close', () => this.lost(live));
    this.live = live;
    this.attempt = 0;
    for (const waiter of this.waiters.splice(0)) waiter.resolve(live);
  }

  private lost(live: LiveConnection): void {
    if (this.live !== live) return;
    this.live = undefined;
    if (this.closed) return;
    this.options.onError(new Error(`rabbitmq: lost the connection to ${redactUrl(this.options.url)}; reconnecting`));
    this.schedule();
  }

  private schedule(): void {
    const delay = backoffDelayMs(this.attempt++, this.options.reconnect);
    this.timer = setTimeout(() => {
      if (this.closed) return;
      this.connectOnce().catch((error: unknown) => {
        this.options.onError(new Error(`rabbitmq: reconnect attempt ${this.attempt} failed: ${(error as Error).message}`, { cause: error }));
        if (!this.closed) this.schedule();
      });
    }, delay);
  }
}
