/**
 * The orchestrator side of command/reply participants.
 *
 * `messageParticipant(...).call(operation, request, ctx)`:
 * 1. registers an in-memory waiter under `ctx.idempotencyKey`;
 * 2. writes the command through the orchestrator's outbox (its own small
 *    transaction; the relay publishes it): type = the operation, key = the
 *    saga id, payload = the request, headers = the call metadata and the
 *    reply topic (see `messages.ts`);
 * 3. waits for the reply that `CommandReplies` (a consumer on the reply topic)
 *    hands to the waiter with that key: `ok` resolves with the result, a
 *    refusal rejects with `ParticipantRefusedError` (final) or, when the
 *    participant refused only for now, `ParticipantUnavailableError`;
 * 4. gives up when the step's signal aborts (the attempt timeout: the step's
 *    retry sends the command again, same key) or after `replyTimeoutMs`
 *    (`ParticipantNoReplyError`, transient).
 *
 * Waiters live in memory. After an orchestrator restart the step is invoked
 * again, the command is sent again with the same idempotency key, and the
 * participant answers with the reply it stored the first time; a reply that
 * finds no waiter (its orchestrator died, or the attempt gave up) is dropped.
 *
 * **Several orchestrator processes.** A reply must reach the process that
 * waits for it: give each process its own consumer group on the shared
 * reply topic (`group: \`orders-saga-replies.${instanceName}\``), so every
 * process sees every reply and the one holding the waiter takes it. Use a
 * stable instance name (a pod ordinal, a host name): a group is durable on
 * the broker and keeps collecting replies while its process is away.
 *
 * @example
 * ```ts
 * const replies = await listenForReplies({ store, transport, topic: 'orders.saga-replies', group: `orders-replies.${instance}` });
 * const payments = messageParticipant({ name: 'payments', store, outbox, topic: 'payments.commands', replies });
 * const relay = new OutboxRelay({ store, transport }); await relay.start(); // publishes the commands
 * // in a step: invoke: (order, ctx) => payments.call('payments.charge', { amount: order.amount }, ctx)
 * ```
 */
import { Consumer, Handlers, type MessageType, type Outbox, type Transport } from '@bulwark/messaging';
import { systemClock, type Clock, type Timer } from '@bulwark/resilience';
import type { Store } from '@bulwark/store';
import { ParticipantConfigError, ParticipantNoReplyError, ParticipantRefusedError, ParticipantUnavailableError } from './errors.js';
import { CommandReplyMessage, commandMessage, type CommandReply } from './messages.js';
import { callMetadata, metadataHeaders, PARTICIPANT_HEADERS, type Participant, type ParticipantContext } from './participant.js';

export interface CommandRepliesOptions {
  /** The orchestrator's store; its migrations include `messagingMigrations` (the consumer's inbox). */
  store: Store<unknown>;
  transport: Transport;
  /** The topic participants reply on (sent with every command). */
  topic: string;
  /** This process's consumer group on it (see the module comment on several processes). */
  group: string;
  /** Replies handled at once. Default 16 (replies need no order). */
  concurrency?: number;
}

type Waiter = (reply: CommandReply) => void;

/** Receives replies on one topic and hands each to the call waiting for its idempotency key. */
export class CommandReplies {
  readonly topic: string;
  /** Replies handed to a waiting call. */
  delivered = 0;
  /** Replies no call waited for (dropped: a re-sent command gets the stored reply again). */
  unmatched = 0;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly consumer: Consumer<unknown>;
  private started = false;

  constructor(options: CommandRepliesOptions) {
    if (typeof options.topic !== 'string' || options.topic === '') throw new ParticipantConfigError('replies', 'topic', 'must be a non-empty string');
    this.topic = options.topic;
    const handlers = new Handlers<unknown>().on(CommandReplyMessage, (reply, { tx }) => {
      // Handed over once the inbox row commits: a redelivered reply is absorbed by the inbox.
      tx.afterCommit(() => this.deliver(reply));
      return Promise.resolve();
    });
    this.consumer = new Consumer({ store: options.store, transport: options.transport, topic: options.topic, group: options.group, handlers, concurrency: options.concurrency ?? 16 });
  }

  async start(): Promise<this> {
    if (!this.started) {
      this.started = true;
      await this.consumer.start();
    }
    return this;
  }

  /** Stops receiving; calls still waiting give up on their own timers and signals. */
  async stop(): Promise<void> {
    this.started = false;
    await this.consumer.stop();
  }

  /** Waits for the reply to `idempotencyKey`; `cancel()` stops waiting. Register before sending the command. */
  expect(idempotencyKey: string): { reply: Promise<CommandReply>; cancel: () => void } {
    let waiter: Waiter | undefined;
    const reply = new Promise<CommandReply>((resolve) => (waiter = resolve));
    const set = this.waiters.get(idempotencyKey) ?? new Set<Waiter>();
    set.add(waiter as Waiter);
    this.waiters.set(idempotencyKey, set);
    const cancel = (): void => {
      set.delete(waiter as Waiter);
      if (set.size === 0 && this.waiters.get(idempotencyKey) === set) this.waiters.delete(idempotencyKey);
    };
    return { reply, cancel };
  }

  /** Calls waiting for a reply right now. */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  private deliver(reply: CommandReply): void {
    const set = this.waiters.get(reply.idempotencyKey);
    if (set === undefined || set.size === 0) {
      this.unmatched++;
      return;
    }
    this.waiters.delete(reply.idempotencyKey);
    this.delivered++;
    for (const waiter of set) waiter(reply);
  }
}

/** Creates and starts a `CommandReplies`. */
export function listenForReplies(options: CommandRepliesOptions): Promise<CommandReplies> {
  return new CommandReplies(options).start();
}

export interface MessageParticipantOptions {
  /** The participant's name, in errors. */
  name: string;
  /** The orchestrator's store: commands are written to its outbox. */
  store: Store<unknown>;
  outbox: Outbox;
  /** The topic the participant consumes commands from. */
  topic: string;
  /** Where replies arrive (its topic is sent with every command as the reply topic). */
  replies: CommandReplies;
  /** Message types of operations that have one (a versioned, checked payload); others go as the operation name, v1. */
  commands?: Readonly<Record<string, MessageType<unknown>>>;
  /**
   * The longest wait for one reply when the step's attempt has no shorter
   * timeout. Default 30 s. Past it the call fails with `ParticipantNoReplyError`
   * (transient): the step's retry sends the command again, same key.
   */
  replyTimeoutMs?: number;
  /** Timers. Default the system clock. */
  clock?: Clock;
  /** Wall-clock ms for the `bulwark-deadline-at` header. Default `Date.now`. */
  now?: () => number;
}

/** A participant reached by command and reply messages (see the module comment). */
export function messageParticipant(options: MessageParticipantOptions): Participant {
  const { name, store, outbox, topic, replies } = options;
  if (typeof name !== 'string' || name === '') throw new ParticipantConfigError(String(name), 'name', 'must be a non-empty string');
  if (typeof store !== 'object' || store === null || typeof store.transaction !== 'function') throw new ParticipantConfigError(name, 'store', 'must be a store from openStore()');
  if (typeof outbox !== 'object' || outbox === null || typeof outbox.add !== 'function') throw new ParticipantConfigError(name, 'outbox', 'must be an Outbox');
  if (!(replies instanceof CommandReplies)) throw new ParticipantConfigError(name, 'replies', 'must be a CommandReplies (listenForReplies)');
  if (typeof topic !== 'string' || topic === '') throw new ParticipantConfigError(name, 'topic', 'must be a non-empty string');
  const replyTimeoutMs = options.replyTimeoutMs ?? 30_000;
  if (!(replyTimeoutMs > 0) || !Number.isFinite(replyTimeoutMs)) throw new ParticipantConfigError(name, 'replyTimeoutMs', 'must be a positive number of milliseconds');
  const clock = options.clock ?? systemClock;
  const now = options.now ?? Date.now;
  const commands = options.commands ?? {};

  return {
    name,
    async call<Res = unknown>(operation: string, request: unknown, ctx: ParticipantContext): Promise<Res> {
      const signal = ctx.signal;
      if (signal.aborted) throw signal.reason;
      const type = commands[operation] ?? commandMessage(operation);
      const meta = callMetadata(ctx);
      const remaining = ctx.remaining();
      const headers: Record<string, string> = { ...metadataHeaders(meta), [PARTICIPANT_HEADERS.replyTo]: replies.topic };
      if (Number.isFinite(remaining)) headers[PARTICIPANT_HEADERS.deadlineAt] = String(Math.ceil(now() + remaining));
      const waitMs = Math.max(1, Math.min(replyTimeoutMs, remaining));

      const pending = replies.expect(meta.idempotencyKey);
      let timer: Timer | undefined;
      let onAbort: (() => void) | undefined;
      try {
        await store.transaction((tx) => outbox.add(tx, topic, { type, key: meta.sagaId, payload: request, headers }));
        const reply = await new Promise<CommandReply>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason as Error);
          onAbort = () => reject(signal.reason as Error);
          signal.addEventListener('abort', onAbort, { once: true });
          timer = clock.setTimer(() => reject(new ParticipantNoReplyError(name, operation, meta.idempotencyKey, waitMs)), waitMs);
          pending.reply.then(resolve, reject);
        });
        if (reply.outcome === 'ok') return reply.result as Res;
        if (reply.retryable) throw new ParticipantUnavailableError(name, operation, reply.reason);
        throw new ParticipantRefusedError(name, operation, reply.reason, reply.code === undefined ? {} : { participantCode: reply.code });
      } finally {
        pending.cancel();
        timer?.cancel();
        if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
      }
    },
  };
}
