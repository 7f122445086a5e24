/**
 * What a consumer does with each message type: one handler per
 * (type, version), so a consumer can handle version 1 and version 2 of a
 * message side by side while producers move over.
 *
 * @example
 * ```ts
 * const handlers = new Handlers<NotificationsDb>()
 *   .on(OrderConfirmed, async (payload, { tx }) => {
 *     await tx.db.insertInto('emails').values({ orderId: payload.orderId, kind: 'confirmation' }).execute();
 *   });
 * ```
 */
import type { UnitOfWork } from '@bulwark/store';
import type { Envelope } from '../envelope.js';
import { MessagingConfigError } from '../errors.js';
import type { MessageType } from '../message-type.js';

export interface HandlerContext<DB> {
  /** The transaction the handler's effects commit in, with the inbox row that makes them happen once. */
  tx: UnitOfWork<DB>;
  envelope: Envelope;
  /** 1 on the first delivery. */
  deliveryCount: number;
}

export type MessageHandler<DB, T> = (payload: T, ctx: HandlerContext<DB>) => Promise<void>;

export interface HandlerEntry<DB> {
  type: MessageType<unknown>;
  handle: MessageHandler<DB, unknown>;
}

export class Handlers<DB> {
  private readonly entries = new Map<string, HandlerEntry<DB>>();

  /** Handles `type` (at its version) with `handle`. One handler per (type, version). */
  on<T>(type: MessageType<T>, handle: MessageHandler<DB, T>): this {
    const key = `${type.type}@${type.version}`;
    if (this.entries.has(key)) throw new MessagingConfigError('handlers', `a handler for ${type.type} v${type.version} is already registered`);
    this.entries.set(key, { type: type, handle: handle as MessageHandler<DB, unknown> });
    return this;
  }

  get(type: string, version: number): HandlerEntry<DB> | undefined {
    return this.entries.get(`${type}@${version}`);
  }

  /** The (type, version) pairs handled, e.g. `OrderConfirmed@1`. */
  handled(): string[] {
    return [...this.entries.keys()];
  }
}
