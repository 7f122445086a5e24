/**
 * Typed listeners for the SLO engine and its webhooks, mirrored to the
 * `node:diagnostics_channel` channel `bulwark:telemetry:slo` so a console or a
 * log shipper can watch every engine in the process without a reference to it.
 * A listener that throws is reported as a process warning and never reaches
 * the code that emitted (an evaluation, a delivery).
 */
import { channel } from 'node:diagnostics_channel';

/** The diagnostics channel every SLO engine and webhook publishes to; messages carry `type`. */
export const SLO_CHANNEL = 'bulwark:telemetry:slo';

const sloChannel = channel(SLO_CHANNEL);

export type Listener<E> = (event: E) => void;

/** A small typed event emitter; `on` returns the function that unsubscribes. */
export class Emitter<Events extends { [K in keyof Events]: object }> {
  private readonly listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};

  constructor(private readonly source: string) {}

  /** Subscribes to one event type; returns the function that unsubscribes. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    const list = (this.listeners[type] ??= []);
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Calls every listener of `type` with `event`, then publishes `{ type, source, ...event }` on the channel. */
  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const list = this.listeners[type];
    if (list !== undefined) {
      for (const listener of [...list]) {
        try {
          listener(event);
        } catch (error) {
          process.emitWarning(`bulwark: an SLO "${String(type)}" listener threw: ${String(error)}`);
        }
      }
    }
    if (sloChannel.hasSubscribers) sloChannel.publish({ type, source: this.source, ...event });
  }
}
