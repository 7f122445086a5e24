/**
 * LISTEN on a dedicated connection, for commit signals sent with
 * `pg_notify` inside transactions (delivered when, and only if, they commit,
 * to every process). The connection reconnects with backoff; after a
 * reconnect every listener is called once, since notifications sent while it
 * was down are lost.
 */
import pg from 'pg';

type Listener = () => void;

export class CommitListener {
  private client: pg.Client | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();
  private connecting: Promise<void> | undefined;
  private closed = false;
  private retryMs = 100;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string,
    /** Shown in `pg_stat_activity`, so operators (and tests) can find this connection. */
    private readonly applicationName: string,
  ) {}

  async listen(channel: string, listener: Listener): Promise<() => void> {
    let set = this.listeners.get(channel);
    const fresh = set === undefined;
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    await this.connect();
    if (fresh && this.client !== undefined) await this.client.query(`listen "${channel}"`);
    return () => {
      set.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connect(): Promise<void> {
    if (this.client !== undefined) return Promise.resolve();
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, application_name: this.applicationName });
    client.on('notification', (n) => {
      for (const listener of this.listeners.get(n.channel) ?? []) listener();
    });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    await client.connect();
    for (const channel of this.listeners.keys()) await client.query(`listen "${channel}"`);
    this.client = client;
    this.retryMs = 100;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    const retry = (): void => {
      if (this.closed) return;
      this.connect().then(
        () => {
          for (const set of this.listeners.values()) for (const listener of set) listener();
        },
        () => {
          this.retryMs = Math.min(this.retryMs * 2, 5_000);
          this.retryTimer = setTimeout(retry, this.retryMs);
        },
      );
    };
    this.retryTimer = setTimeout(retry, this.retryMs);
  }
}
