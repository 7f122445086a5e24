/**
 * Publishing with publisher confirms. One ConfirmChannel per connection,
 * opened on first use and again after it closes. amqplib numbers the messages
 * of a channel in the order `publish` is called and calls each message's
 * callback when the broker confirms (or nacks) that number, so publishes can
 * be pipelined and still resolve one by one. Writes wait for `drain` when the
 * socket buffer is full.
 *
 * `mandatory` publishes (the transport's own copies: delayed naks, dead
 * letters) fail when the broker routes them to no queue; RabbitMQ sends the
 * `basic.return` before the confirm, so the callback knows.
 */
import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import type { RabbitConnection } from './connection.js';

/** Marks a mandatory publish so its `basic.return` can be matched. Stripped from copies. */
export const PUBLISH_ID_HEADER = 'x-bulwark-publish-id';

interface OpenChannel {
  readonly channel: ConfirmChannel;
  readonly returned: Set<string>;
  open: boolean;
  writable: Promise<void> | undefined;
}

export class ConfirmPublisher {
  private current: Promise<OpenChannel> | undefined;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly connection: RabbitConnection,
    private readonly timeoutMs: number,
  ) {}

  /** Resolves on the broker's confirm; rejects on a nack, a return (when `mandatory`) or a closed channel. */
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish, mandatory = false): Promise<void> {
    const done = this.send(exchange, routingKey, content, options, mandatory);
    this.pending.add(done);
    const forget = (): void => void this.pending.delete(done);
    done.then(forget, forget);
    return done;
  }

  /** Waits for every publish under way to be confirmed or rejected, then closes the channel. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    const current = this.current;
    this.current = undefined;
    if (current !== undefined) {
      const open = await current.catch(() => undefined);
      if (open?.open === true) await open.channel.close().catch(() => undefined);
    }
  }

  private async send(exchange: string, routingKey: string, content: Buffer, options: Options.Publish, mandatory: boolean): Promise<void> {
    const where = exchange === '' ? `queue "${routingKey}"` : `exchange "${exchange}" (routing key "${routingKey}")`;
    let open = await this.channel();
    while (open.writable !== undefined) {
      await open.writable;
      open = await this.channel();
    }
    if (!open.open) open = await this.channel();
    const publishId = mandatory ? randomUUID() : undefined;
    const given = options.headers as Record<string, unknown> | undefined;
    const headers = publishId === undefined ? given : { ...given, [PUBLISH_ID_HEADER]: publishId };
    return new Promise<void>((resolve, reject) => {
      const confirmed = (error: unknown): void => {
        const returned = publishId !== undefined && open.returned.delete(publishId);
        if (error !== null && error !== undefined) {
          const reason = error instanceof Error ? error.message : 'rejected';
          reject(new Error(`rabbitmq: publish to ${where} not confirmed: ${reason}`, { cause: error }));
        } else if (returned) reject(new Error(`rabbitmq: publish to ${where} was unroutable (no such queue)`));
        else resolve();
      };
      try {
        const ok = open.channel.publish(exchange, routingKey, content, { ...options, headers, mandatory }, confirmed);
        if (!ok && open.writable === undefined) {
          open.writable = new Promise<void>((ready) => {
            const release = (): void => {
              open.writable = undefined;
              open.channel.off('drain', release);
              open.channel.off('close', release);
              ready();
            };
            open.channel.on('drain', release);
            open.channel.on('close', release);
          });
        }
      } catch (error) {
        // amqplib throws at once when the channel has closed.
        confirmed(error);
      }
    });
  }

  private channel(): Promise<OpenChannel> {
    if (this.current === undefined) {
      const next = this.openChannel();
      const forget = (): void => {
        if (this.current === next) this.current = undefined;
      };
      next.then((open) => open.channel.once('close', forget), forget);
      this.current = next;
    }
    return this.current;
  }

  private async openChannel(): Promise<OpenChannel> {
    const { model } = await this.connection.get(this.timeoutMs);
    const channel = await model.createConfirmChannel();
    const open: OpenChannel = { channel, returned: new Set(), open: true, writable: undefined };
    channel.on('error', () => undefined); // the close that follows is what matters; callbacks get the error
    channel.on('close', () => {
      open.open = false;
    });
    channel.on('return', (message: Message) => {
      const id: unknown = message.properties.headers?.[PUBLISH_ID_HEADER];
      if (typeof id === 'string') open.returned.add(id);
    });
    return open;
  }
}
