/**
 * The participant side of command/reply: `serveCommands` consumes a service's
 * command topic, runs the handler of each operation, and replies through the
 * service's own outbox — with the effect taking place once per idempotency key,
 * however often the command arrives.
 *
 * For each command, in one transaction of the participant's database (the
 * consumer's, so its inbox row is in it too):
 * 1. the consumer's inbox absorbs a redelivery of the same message;
 * 2. the idempotency key is claimed in `saga_command_replies`; when a reply is
 *    stored under it already (the orchestrator re-sent the command after a
 *    timeout or a restart), that reply is sent again and nothing else runs;
 * 3. the handler runs (behind a savepoint) with a unit of work on the same
 *    transaction; its answer is stored under the key and replied;
 * 4. a handler that throws an error with `retryable: false` (see `refuse`)
 *    refuses: its writes are rolled back to the savepoint (its outbox
 *    messages and commit hooks dropped), the refusal is stored and replied;
 *    with `retryable: true` the refusal is replied but not stored ("not now":
 *    the orchestrator asks again, and the handler runs again);
 * 5. any other error rolls everything back and the consumer retries the
 *    delivery with backoff (dead-lettering it after `maxDeliveries`).
 * Effect, stored reply, outgoing reply and inbox row commit together.
 *
 * A command of an operation with no handler is dead-lettered by the consumer
 * (the orchestrator's step then times out and fails).
 *
 * @example
 * ```ts
 * const server = await serveCommands<PaymentsDb>({
 *   store, transport, outbox, topic: 'payments.commands', group: 'payments',
 *   handlers: {
 *     'payments.charge': async (req: { amount: number }, { tx, idempotencyKey }) => {
 *       if (req.amount > 1_000) throw refuse('amount over the card limit', { code: 'LIMIT' });
 *       await tx.db.insertInto('charges').values({ id: idempotencyKey, amount: req.amount }).execute();
 *       return { chargeId: idempotencyKey };
 *     },
 *     'payments.refund': async (_req, { tx, invokeKey }) => {
 *       await tx.db.updateTable('charges').set({ refunded: true }).where('id', '=', invokeKey!).execute();
 *     },
 *   },
 * });
 * // the service's OutboxRelay publishes the replies
 * ```
 */
import { Consumer, Handlers, type ConsumerOptions, type Envelope, type MessageType, type Outbox, type Transport } from '@bulwark/messaging';
import { sql, type CommitWrite, type Kysely, type Store, type UnitOfWork } from '@bulwark/store';
import { ParticipantConfigError } from './errors.js';
import { CommandReplyMessage, commandMessage, type CommandReply, type ParticipantTables } from './messages.js';
import { PARTICIPANT_HEADERS } from './participant.js';

/** What a command handler receives besides the request. */
export interface CommandContext<DB> {
  /** The transaction the effect commits in, with the stored reply and the inbox row. */
  tx: UnitOfWork<DB>;
  operation: string;
  /** `sagaId:step` (or `sagaId:step:compensate`): the operation's identity. */
  idempotencyKey: string;
  /** On a compensation: the key of the operation to undo (which may never have arrived: record a tombstone then). */
  invokeKey: string | undefined;
  phase: 'invoke' | 'compensate';
  sagaId: string;
  sagaType: string | undefined;
  step: string | undefined;
  /** Wall-clock ms after which the orchestrator no longer waits for this attempt (it will send again). */
  deadlineAt: number | undefined;
  envelope: Envelope;
  deliveryCount: number;
}

/** Runs an operation; resolves to its answer (JSON, or nothing). Throw `refuse(...)` to refuse. */
export type CommandHandler<DB, Req = never, Res = unknown> = (request: Req, ctx: CommandContext<DB>) => Promise<Res>;

/** A handler with the message type that checks its request (and names its version). */
export interface TypedCommandHandler<DB, Req, Res = unknown> {
  type: MessageType<Req>;
  handle: CommandHandler<DB, Req, Res>;
}

export interface ServeCommandsOptions<DB> {
  /** The participant's store; its migrations include `messagingMigrations` and `participantMigrations`. */
  store: Store<DB>;
  transport: Transport;
  /** The participant's outbox: replies go through it (run an `OutboxRelay` on `store`). */
  outbox: Outbox;
  /** The command topic. */
  topic: string;
  /** The consumer group (the participant service's name). Stored replies are scoped by it. */
  group: string;
  /** A handler per operation. */
  handlers: Readonly<Record<string, CommandHandler<DB, never> | TypedCommandHandler<DB, never>>>;
  /** Consumer tuning (`maxDeliveries`, `backoff`, `concurrency`, `ackWaitMs`). */
  consumer?: Pick<ConsumerOptions<DB>, 'maxDeliveries' | 'backoff' | 'concurrency' | 'ackWaitMs'>;
}

/** A running command server. */
export interface CommandServer<DB> {
  readonly consumer: Consumer<DB>;
  /** Stops consuming, waiting for the commands in hand. */
  stop(): Promise<void>;
  /** Deletes stored replies older than `olderThanMs` (keep them longer than any saga may re-send a command). Resolves to the count. */
  pruneReplies(olderThanMs: number): Promise<number>;
}

const SAVEPOINT = 'bulwark_saga_command';

/** Starts consuming commands (see the module comment). */
export async function serveCommands<DB>(options: ServeCommandsOptions<DB>): Promise<CommandServer<DB>> {
  const { store, outbox, group } = options;
  if (typeof group !== 'string' || group === '') throw new ParticipantConfigError(String(group), 'group', 'must be a non-empty string');
  if (typeof outbox !== 'object' || outbox === null || typeof outbox.add !== 'function') throw new ParticipantConfigError(group, 'outbox', 'must be an Outbox');
  if (typeof options.handlers !== 'object' || options.handlers === null || Object.keys(options.handlers).length === 0) throw new ParticipantConfigError(group, 'handlers', 'must map at least one operation to a handler');
  const handlers = new Handlers<DB>();
  for (const [operation, entry] of Object.entries(options.handlers)) {
    const typed = typeof entry === 'function' ? { type: commandMessage(operation) as MessageType<never>, handle: entry } : entry;
    if (typeof typed?.handle !== 'function' || typeof typed.type?.parse !== 'function') throw new ParticipantConfigError(group, `handlers.${operation}`, 'must be a function or { type, handle }');
    if (typed.type.type !== operation) throw new ParticipantConfigError(group, `handlers.${operation}`, `has message type "${typed.type.type}"; a command's type is its operation`);
    handlers.on(typed.type, (request, { tx, envelope, deliveryCount }) => serve(options, operation, typed.handle as CommandHandler<DB, unknown>, request, tx, envelope, deliveryCount));
  }
  const consumer = new Consumer<DB>({ ...options.consumer, store, transport: options.transport, topic: options.topic, group, handlers });
  await consumer.start();
  return {
    consumer,
    stop: () => consumer.stop(),
    async pruneReplies(olderThanMs: number): Promise<number> {
      const db = store.db as unknown as Kysely<ParticipantTables>;
      const result = await db.deleteFrom('saga_command_replies').where('consumer_group', '=', group).where('at', '<', Date.now() - olderThanMs).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

/** One command, inside the consumer's transaction. */
async function serve<DB>(options: ServeCommandsOptions<DB>, operation: string, handle: CommandHandler<DB, unknown>, request: unknown, tx: UnitOfWork<DB>, envelope: Envelope, deliveryCount: number): Promise<void> {
  const h = envelope.headers;
  const idempotencyKey = h[PARTICIPANT_HEADERS.idempotencyKey];
  const replyTo = h[PARTICIPANT_HEADERS.replyTo];
  if (idempotencyKey === undefined || idempotencyKey === '' || replyTo === undefined || replyTo === '') {
    // Never answerable: the consumer dead-letters it at once.
    throw Object.assign(new Error(`command ${envelope.id} (${operation}) has no ${idempotencyKey ? PARTICIPANT_HEADERS.replyTo : PARTICIPANT_HEADERS.idempotencyKey} header`), { retryable: false });
  }
  const db = tx.db as unknown as Kysely<ParticipantTables>;
  const { group } = options;
  const reply = (payload: CommandReply): Promise<unknown> => options.outbox.add(tx, replyTo, { type: CommandReplyMessage, key: envelope.key, payload, ...(h.traceparent === undefined ? {} : { headers: { traceparent: h.traceparent } }) });

  await sql.raw(`savepoint ${SAVEPOINT}`).execute(db);
  // Claim the key. On PostgreSQL a concurrent claim of the same key waits here for the first to commit, then sees its reply.
  const claimed = await db
    .insertInto('saga_command_replies')
    .values({ consumer_group: group, idempotency_key: idempotencyKey, operation, outcome: 'pending', reply: '', at: Date.now() })
    .onConflict((oc) => oc.columns(['consumer_group', 'idempotency_key']).doNothing())
    .returning('idempotency_key')
    .executeTakeFirst();
  if (claimed === undefined) {
    await sql.raw(`release savepoint ${SAVEPOINT}`).execute(db);
    const stored = await db.selectFrom('saga_command_replies').select(['reply']).where('consumer_group', '=', group).where('idempotency_key', '=', idempotencyKey).executeTakeFirstOrThrow();
    await reply(JSON.parse(stored.reply) as CommandReply);
    return;
  }

  const deferred = new DeferredCommit();
  const deadlineAt = Number(h[PARTICIPANT_HEADERS.deadlineAt]);
  const invokeKey = h[PARTICIPANT_HEADERS.invokeKey];
  const context: CommandContext<DB> = {
    tx: deferred.wrap(tx),
    operation,
    idempotencyKey,
    invokeKey: invokeKey === '' ? undefined : invokeKey,
    phase: h[PARTICIPANT_HEADERS.phase] === 'compensate' || invokeKey !== undefined ? 'compensate' : 'invoke',
    sagaId: h[PARTICIPANT_HEADERS.sagaId] ?? envelope.key,
    sagaType: h[PARTICIPANT_HEADERS.sagaType],
    step: h[PARTICIPANT_HEADERS.step],
    deadlineAt: Number.isFinite(deadlineAt) ? deadlineAt : undefined,
    envelope,
    deliveryCount,
  };
  let answer: CommandReply;
  try {
    const result = await handle(request, context);
    answer = { idempotencyKey, operation, outcome: 'ok', result: result === undefined ? null : JSON.parse(JSON.stringify(result)) };
  } catch (error) {
    const retryable = (error as { retryable?: unknown } | null)?.retryable;
    if (typeof retryable !== 'boolean') throw error; // not a refusal: the consumer retries the delivery
    await sql.raw(`rollback to savepoint ${SAVEPOINT}`).execute(db);
    await sql.raw(`release savepoint ${SAVEPOINT}`).execute(db);
    const code = (error as { participantCode?: unknown; code?: unknown }).participantCode ?? (error as { code?: unknown }).code;
    const refusal: CommandReply = { idempotencyKey, operation, outcome: 'refused', reason: error instanceof Error ? error.message : String(error), retryable, ...(typeof code === 'string' ? { code } : {}) };
    if (!retryable) {
      await db.insertInto('saga_command_replies').values({ consumer_group: group, idempotency_key: idempotencyKey, operation, outcome: 'refused', reply: JSON.stringify(refusal), at: Date.now() }).execute();
    }
    await reply(refusal);
    return;
  }
  await db
    .updateTable('saga_command_replies')
    .set({ outcome: 'ok', reply: JSON.stringify(answer), at: Date.now() })
    .where('consumer_group', '=', group)
    .where('idempotency_key', '=', idempotencyKey)
    .execute();
  await sql.raw(`release savepoint ${SAVEPOINT}`).execute(db);
  deferred.commitInto(tx);
  await reply(answer);
}

/**
 * The handler's view of the transaction: the same connection, but its commit
 * writes, commit hooks and signals are held back until it succeeds, so a
 * refusal (rolled back to the savepoint) leaves none of them behind.
 */
class DeferredCommit {
  private readonly writes: CommitWrite[] = [];
  private readonly hooks: (() => void)[] = [];
  private readonly signals: string[] = [];

  wrap<DB>(tx: UnitOfWork<DB>): UnitOfWork<DB> {
    return {
      db: tx.db,
      dialect: tx.dialect,
      module: tx.module,
      forUpdate: (query) => tx.forUpdate(query),
      afterCommit: (fn) => void this.hooks.push(fn),
      signal: (channel) => void this.signals.push(channel),
      atCommit: (write) => void this.writes.push(write),
    };
  }

  commitInto<DB>(tx: UnitOfWork<DB>): void {
    for (const write of this.writes) tx.atCommit(write);
    for (const hook of this.hooks) tx.afterCommit(hook);
    for (const channel of this.signals) tx.signal(channel);
  }
}
