/**
 * The dead letters of a module's consumers, in its own database: list them,
 * look at one, and replay it through its consumer once the cause is fixed.
 *
 * @example
 * ```ts
 * const dlq = new DeadLetters(store);
 * for (const letter of await dlq.list({ group: 'notifications' })) console.log(letter.id, letter.error);
 * await dlq.replay(letter.id, notificationsConsumer);
 * ```
 */
import type { Kysely, Selectable, Store } from '@bulwark/store';
import { parseDelivery } from '../envelope-codec.js';
import { MessagingConfigError } from '../errors.js';
import type { MessagingTables } from '../schema/messaging-migrations.js';
import type { Delivery } from '../transport/transport.js';
import type { ConsumeOutcome, Consumer } from './consumer.js';

export interface DeadLetter {
  id: number;
  group: string;
  topic: string;
  messageId: string | null;
  type: string | null;
  version: number | null;
  body: string;
  error: string;
  deliveries: number;
  deadAt: Date;
  replayedAt: Date | null;
}

export interface DeadLetterQuery {
  group?: string;
  topic?: string;
  /** Include letters already replayed. Default false. */
  includeReplayed?: boolean;
  /** Default 100. */
  limit?: number;
  /** Letters with an id above this (paging). */
  after?: number;
}

export class DeadLetters<DB = unknown> {
  private readonly db: Kysely<MessagingTables>;

  constructor(store: Store<DB>) {
    this.db = store.db as unknown as Kysely<MessagingTables>;
  }

  async list(query: DeadLetterQuery = {}): Promise<DeadLetter[]> {
    let q = this.db.selectFrom('messaging_dead_letters').selectAll().orderBy('id').limit(query.limit ?? 100);
    if (query.group !== undefined) q = q.where('consumer_group', '=', query.group);
    if (query.topic !== undefined) q = q.where('topic', '=', query.topic);
    if (query.after !== undefined) q = q.where('id', '>', query.after);
    if (query.includeReplayed !== true) q = q.where('replayed_at', 'is', null);
    return (await q.execute()).map(toDeadLetter);
  }

  async get(id: number): Promise<DeadLetter | undefined> {
    const row = await this.db.selectFrom('messaging_dead_letters').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toDeadLetter(row);
  }

  /**
   * Runs the letter through `consumer` again, as a fresh delivery (its inbox
   * still makes the effect happen once), and marks it replayed when the
   * consumer handled it. Returns what the consumer did.
   */
  async replay(id: number, consumer: Pick<Consumer<unknown>, 'process'>): Promise<ConsumeOutcome> {
    const letter = await this.get(id);
    if (letter === undefined) throw new MessagingConfigError('id', `no dead letter ${id}`);
    if (letter.replayedAt !== null) throw new MessagingConfigError('id', `dead letter ${id} was already replayed`);
    const outcome = await consumer.process(replayDelivery(letter.body));
    if (outcome === 'handled' || outcome === 'duplicate') {
      await this.db.updateTable('messaging_dead_letters').set({ replayed_at: Date.now() }).where('id', '=', id).execute();
    }
    return outcome;
  }
}

/** A delivery made from a stored body: settling it does nothing, there is no broker behind it. */
function replayDelivery(raw: string): Delivery {
  const { envelope, parseError } = parseDelivery(raw);
  const settle = (): Promise<void> => Promise.resolve();
  return { raw, envelope, parseError, deliveryCount: 1, ack: settle, nak: settle, term: settle };
}

function toDeadLetter(row: Selectable<MessagingTables['messaging_dead_letters']>): DeadLetter {
  return {
    id: Number(row.id),
    group: row.consumer_group,
    topic: row.topic,
    messageId: row.message_id,
    type: row.type,
    version: row.version === null ? null : Number(row.version),
    body: row.body,
    error: row.error,
    deliveries: Number(row.deliveries),
    deadAt: new Date(Number(row.dead_at)),
    replayedAt: row.replayed_at === null ? null : new Date(Number(row.replayed_at)),
  };
}
