/**
 * Message types: a name, a schema version, and a parser that checks a
 * payload. Producers are checked at `outbox.add`; consumers register a
 * handler per (type, version), so old and new versions can be handled side
 * by side while producers move over.
 *
 * @example
 * ```ts
 * const OrderConfirmed = defineMessage('OrderConfirmed', 1, (p) => {
 *   if (typeof p !== 'object' || p === null || typeof (p as { orderId?: unknown }).orderId !== 'string') throw new Error('orderId must be a string');
 *   return p as { orderId: string };
 * });
 * ```
 */
import { MessagingConfigError } from './errors.js';

export interface MessageType<T> {
  readonly type: string;
  readonly version: number;
  /** Returns the payload, typed, or throws saying what is wrong. */
  parse(payload: unknown): T;
}

export function defineMessage<T>(type: string, version: number, parse: (payload: unknown) => T): MessageType<T> {
  if (typeof type !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/.test(type)) throw new MessagingConfigError('type', `${JSON.stringify(type)} must be a name of letters, digits, _ . -`);
  if (!Number.isInteger(version) || version < 1) throw new MessagingConfigError('version', `must be an integer >= 1, got ${String(version)}`);
  if (typeof parse !== 'function') throw new MessagingConfigError('parse', 'must be a function');
  return Object.freeze({ type, version, parse });
}
