/**
 * One consumer of the embedded bus: claims deliveries for its group in order,
 * at most `concurrency` at a time, hands them to the handler, and settles
 * them as the handler says. A handler that throws without settling gets a
 * nak; one that returns without settling leaves the delivery in flight until
 * its visibility timeout, as a crashed consumer would.
 */
import { sql, type Kysely } from '@bulwark/store';
import { parseDelivery } from '../../envelope-codec.js';
import type { Delivery, DeliveryHandler, Subscription } from '../transport.js';
import type { BusTables } from './bus-migrations.js';
import type { EmbeddedTransport } from './embedded-transport.js';

interface Settings {
  maxDeliveries: number;
  ackWaitMs: number;
  concurrency: number;
}

interface Claimed {
  seq: number;
  deliveries: number;
  body: string;
}

export class EmbeddedSubscription implements Subscription {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  private woken = false;

  constructor(
    private readonly transport: EmbeddedTransport,
    private readonly topic: string,
    private readonly group: string,
    private readonly handler: DeliveryHandler,
    private readonly settings: Settings,
    private readonly onStopped: () => void,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  poke(): void {
    this.woken = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.poke();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
    this.onStopped();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const free = this.settings.concurrency - this.inFlight.size;
      let claimed: Claimed[] = [];
      if (free > 0) {
        this.woken = false;
        try {
          claimed = await this.claim(free);
        } catch (error) {
          process.emitWarning(`bulwark embedded bus: claiming for "${this.group}" failed: ${String(error)}`);
        }
        for (const row of claimed) this.dispatch(row);
      }
      if (!this.running) break;
      if (free > 0 && claimed.length === free) continue;
      if (this.woken && free > 0) continue;
      await this.idle();
    }
  }

  private dispatch(row: Claimed): void {
    const delivery = new EmbeddedDelivery(this.transport.db, this.group, this.topic, row);
    const task = this.handler(delivery)
      .catch(() => (delivery.settled ? undefined : delivery.nak()))
      .catch(() => undefined)
      .finally(() => {
        this.inFlight.delete(task);
        this.poke();
      });
    this.inFlight.add(task);
  }

  /** Waits for a commit signal, a finished handler, `stop()`, or the poll interval. */
  private idle(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.transport.pollIntervalMs);
      this.wake = done;
    });
  }

  private async claim(limit: number): Promise<Claimed[]> {
    const now = Date.now();
    const { group, topic } = this;
    const { maxDeliveries, ackWaitMs } = this.settings;
    const store = this.transport.store;
    return store.transaction(async (tx) => {
      const db = tx.db as unknown as Kysely<BusTables>;
      // A message delivered maxDeliveries times and still unsettled is never handed out again.
      await db
        .deleteFrom('bus_deliveries')
        .where('group_name', '=', group)
        .where('topic', '=', topic)
        .where('state', 'in', ['ready', 'inflight'])
        .where('available_at', '<=', now)
        .where('deliveries', '>=', maxDeliveries)
        .execute();
      const lock = store.dialect === 'postgres' ? sql`for update skip locked` : sql``;
      const rows = await sql<{ seq: number; deliveries: number }>`
        update bus_deliveries set state = 'inflight', deliveries = deliveries + 1, available_at = ${now + ackWaitMs}
        where group_name = ${group} and topic = ${topic} and seq in (
          select seq from bus_deliveries
          where group_name = ${group} and topic = ${topic} and state in ('ready', 'inflight') and available_at <= ${now}
          order by seq limit ${limit} ${lock})
        returning seq, deliveries`.execute(tx.db);
      if (rows.rows.length === 0) return [];
      const seqs = rows.rows.map((r) => Number(r.seq));
      const bodies = await db.selectFrom('bus_messages').select(['seq', 'body']).where('topic', '=', topic).where('seq', 'in', seqs).execute();
      const bodyOf = new Map(bodies.map((b) => [Number(b.seq), b.body]));
      return rows.rows
        .map((r) => ({ seq: Number(r.seq), deliveries: Number(r.deliveries), body: bodyOf.get(Number(r.seq)) ?? '' }))
        .sort((a, b) => a.seq - b.seq);
    });
  }
}

class EmbeddedDelivery implements Delivery {
  readonly raw: string;
  readonly envelope: Delivery['envelope'];
  readonly parseError: Error | undefined;
  readonly deliveryCount: number;
  settled = false;

  constructor(
    private readonly db: Kysely<BusTables>,
    private readonly group: string,
    private readonly topic: string,
    private readonly row: Claimed,
  ) {
    this.raw = row.body;
    ({ envelope: this.envelope, parseError: this.parseError } = parseDelivery(row.body));
    this.deliveryCount = row.deliveries;
  }

  async ack(): Promise<void> {
    await this.remove();
  }

  async term(): Promise<void> {
    await this.remove();
  }

  async nak(delayMs = 0): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.mine(this.db.updateTable('bus_deliveries').set({ state: 'ready', available_at: Date.now() + Math.max(0, Math.ceil(delayMs)) })).execute();
  }

  private async remove(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.mine(this.db.deleteFrom('bus_deliveries')).execute();
  }

  /** Only this delivery of the message: a later claim (after a visibility timeout) is someone else's. */
  private mine<Q extends { where: (...args: never[]) => Q }>(query: Q): Q {
    const q = query as unknown as {
      where(c: string, op: string, v: unknown): typeof q;
    };
    return q
      .where('group_name', '=', this.group)
      .where('topic', '=', this.topic)
      .where('seq', '=', this.row.seq)
      .where('deliveries', '=', this.row.deliveries) as unknown as Q;
  }
}
