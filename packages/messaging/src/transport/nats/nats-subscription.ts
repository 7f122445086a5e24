/**
 * The pull loop of one subscription: fetches as many messages as there are
 * free handler slots, hands each to the handler, and keeps going through
 * errors and broker outages until stopped.
 */
import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { DeliveryHandler, Subscription } from '../transport.js';
import { NatsDelivery } from './nats-delivery.js';
import type { NatsErrorContext } from './nats-options.js';

export interface PullLoopOptions {
  topic: string;
  group: string;
  handler: DeliveryHandler;
  concurrency: number;
  pullExpiresMs: number;
  /** Looks up (and re-declares when missing) the durable consumer. */
  openConsumer(): Promise<Consumer>;
  /** Resolves once the server has read everything sent so far. */
  confirm(): Promise<void>;
  /** The connection is closed for good (not merely reconnecting). */
  isClosed(): boolean;
  onError(error: unknown, context: NatsErrorContext): void;
}

const MAX_BACKOFF_MS = 5_000;

/** A running subscription; `stop()` ends it. */
export class NatsSubscription implements Subscription {
  private readonly inFlight = new Set<Promise<void>>();
  private consumer: Consumer | undefined;
  private batch: ConsumerMessages | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  /** Wakes the loop waiting for a free handler slot. */
  private slotFreed: (() => void) | undefined;
  /** Cuts a backoff pause short (on stop). */
  private interrupt: (() => void) | undefined;
  private readonly loop: Promise<void>;

  constructor(
    private readonly options: PullLoopOptions,
    consumer: Consumer,
  ) {
    this.consumer = consumer;
    this.loop = this.run();
  }

  /** Stops pulling, then waits for the handlers in flight. Unsettled deliveries come back after the ack wait. */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.slotFreed?.();
    this.interrupt?.();
    // Closing ends the loop's iteration; the close itself completes only through that iteration.
    void this.batch?.close().catch(() => undefined);
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
    // The server must see the pull inbox go before anything else happens, or it could route a message to it.
    await this.options.confirm().catch(() => undefined);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      await this.freeSlot();
      if (this.stopping) break;
      try {
        this.consumer ??= await this.options.openConsumer();
        if (this.stopping) break;
        const batch = await this.consumer.fetch({ max_messages: this.options.concurrency - this.inFlight.size, expires: this.options.pullExpiresMs });
        this.batch = batch;
        if (this.stopping) void batch.close().catch(() => undefined);
        for await (const msg of batch) this.dispatch(msg);
        failures = 0;
      } catch (error) {
        if (this.stopping) break;
        if (this.options.isClosed()) {
          this.report(error, 'fetch');
          break; // nothing to come back to: close() was called, or the client gave up
        }
        failures++;
        this.report(error, 'fetch');
        // The consumer may be gone (deleted, or a broker that lost its state): look it up again.
        this.consumer = undefined;
        await this.pause(Math.min(100 * 2 ** failures, MAX_BACKOFF_MS));
      } finally {
        this.batch = undefined;
      }
    }
  }

  private dispatch(msg: JsMsg): void {
    const delivery = new NatsDelivery(msg, () => this.options.confirm());
    if (this.stopping) {
      // Pulled as the subscription stopped: hand it straight back.
      void delivery.nak().catch(() => undefined);
      return;
    }
    const running = this.handle(delivery).finally(() => {
      this.inFlight.delete(running);
      this.slotFreed?.();
    });
    this.inFlight.add(running);
  }

  private async handle(delivery: NatsDelivery): Promise<void> {
    try {
      await this.options.handler(delivery);
    } catch (error) {
      this.report(error, 'handler');
      if (!delivery.settled) await delivery.nak().catch((e: unknown) => this.report(e, 'settle'));
    }
  }

  private async freeSlot(): Promise<void> {
    while (!this.stopping && this.inFlight.size >= this.options.concurrency) {
      await new Promise<void>((resolve) => (this.slotFreed = resolve));
    }
  }

  private async pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.interrupt = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
  }

  private report(error: unknown, operation: NatsErrorContext['operation']): void {
    try {
      this.options.onError(error, { operation, topic: this.options.topic, group: this.options.group });
    } catch {
      // An error reporter that throws must not stop the loop.
    }
  }
}
