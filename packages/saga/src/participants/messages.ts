/**
 * The wire format of command/reply participants, and the table a
 * participant keeps its replies in.
 *
 * - A **command** is a message whose type is the operation (`payments.charge`,
 *   version 1 unless the operation is given its own `MessageType`), whose key
 *   is the saga id (one saga's commands stay in order), whose payload is the
 *   request, and whose headers carry the call metadata (`idempotency-key`,
 *   `bulwark-saga-id`, `bulwark-saga-step`, `bulwark-saga-phase`,
 *   `bulwark-invoke-key`), the topic to reply on (`bulwark-reply-to`) and the
 *   wall-clock deadline (`bulwark-deadline-at`, epoch ms) when there is one.
 * - A **reply** is a `bulwark.saga.CommandReply` v1 message on the reply
 *   topic, keyed by saga id: `{ idempotencyKey, operation, outcome: 'ok', result }`
 *   or `{ idempotencyKey, operation, outcome: 'refused', reason, retryable, code? }`.
 * - `saga_command_replies` (migration set `sagaParticipant`) holds, per consumer
 *   group and idempotency key, the final reply a participant gave, written in
 *   the transaction of its effect: a repeated command gets the stored reply
 *   again and never a second effect.
 *
 * @example
 * ```ts
 * await openStore({ module: 'payments', url, migrations: { payments: own, messaging: messagingMigrations, sagaParticipant: participantMigrations } });
 * ```
 */
import { defineMessage, type MessageType } from '@bulwark/messaging';
import type { Migration } from '@bulwark/store';

export interface OkReply {
  idempotencyKey: string;
  operation: string;
  outcome: 'ok';
  /** The handler's answer (JSON); `null` for none. */
  result: unknown;
}

export interface RefusedReply {
  idempotencyKey: string;
  operation: string;
  outcome: 'refused';
  reason: string;
  /** `true`: refused for now (not stored; the orchestrator asks again). */
  retryable: boolean;
  /** The participant's own error code, when it gave one. */
  code?: string;
}

export type CommandReply = OkReply | RefusedReply;

export const COMMAND_REPLY_TYPE = 'bulwark.saga.CommandReply';

/** The reply message type. */
export const CommandReplyMessage: MessageType<CommandReply> = defineMessage<CommandReply>(COMMAND_REPLY_TYPE, 1, (raw) => {
  const r = raw as Partial<Record<keyof RefusedReply | 'result', unknown>> | null;
  if (typeof r !== 'object' || r === null) throw new Error('a reply must be an object');
  if (typeof r.idempotencyKey !== 'string' || r.idempotencyKey === '') throw new Error('idempotencyKey must be a non-empty string');
  if (typeof r.operation !== 'string') throw new Error('operation must be a string');
  if (r.outcome === 'ok') return { idempotencyKey: r.idempotencyKey, operation: r.operation, outcome: 'ok', result: r.result ?? null };
  if (r.outcome !== 'refused') throw new Error('outcome must be "ok" or "refused"');
  if (typeof r.reason !== 'string') throw new Error('a refusal needs a reason');
  if (typeof r.retryable !== 'boolean') throw new Error('a refusal says whether it is retryable');
  return { idempotencyKey: r.idempotencyKey, operation: r.operation, outcome: 'refused', reason: r.reason, retryable: r.retryable, ...(typeof r.code === 'string' ? { code: r.code } : {}) };
});

const untyped = new Map<string, MessageType<unknown>>();

/** The message type of an operation that was given none: the operation's name, version 1, any JSON payload. */
export function commandMessage(operation: string): MessageType<unknown> {
  let type = untyped.get(operation);
  if (type === undefined) {
    type = defineMessage<unknown>(operation, 1, (payload) => payload);
    untyped.set(operation, type);
  }
  return type;
}

export interface ParticipantTables {
  saga_command_replies: { consumer_group: string; idempotency_key: string; operation: string; outcome: string; reply: string; at: number };
}

/** The participant side's table (see the module comment): add it as its own set, `sagaParticipant`. */
export const participantMigrations: readonly Migration[] = [
  {
    id: '20261124T0900_saga_command_replies',
    up: (db) =>
      db.schema
        .createTable('saga_command_replies')
        .addColumn('consumer_group', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('operation', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('reply', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('saga_command_replies_pk', ['consumer_group', 'idempotency_key'])
        .execute(),
  },
];
