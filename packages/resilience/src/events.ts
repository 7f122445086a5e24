/**
 * Policy events: a typed listener API on every policy, mirrored to
 * `node:diagnostics_channel` so telemetry can subscribe to every policy in the
 * process without this package importing it.
 *
 * Channels are named `bulwark:resilience:<policy kind>`; each message is the
 * event object with `type` and `policy` (the policy's name) set.
 *
 * Emitting is free when nobody listens: callers check `wants(type)` before
 * building the event object.
 */
import { channel, type Channel } from 'node:diagnostics_channel';

export type Listener<E> = (event: E) => void;

/** The name of the diagnostics channel for a policy kind. */
export function channelName(kind: PolicyKind): string {
  return `bulwark:resilience:${kind}`;
}

export type PolicyKind = 'timeout' | 'retry' | 'circuit-breaker' | 'bulkhead' | 'rate-limiter' | 'hedge' | 'fallback';

export class PolicyEvents<Events extends { [K in keyof Events]: object }> {
  private readonly listeners: { [K in keyof Events]?: Listener<Events[K] & EventMeta>[] } = {};
  private readonly channel: Channel;

  constructor(
    readonly kind: PolicyKind,
    readonly policy: string,
  ) {
    this.channel = channel(channelName(kind));
  }

  /** Subscribes to one event type; returns the function that unsubscribes. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K] & EventMeta>): () => void {
    const list = (this.listeners[type] ??= []);
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** True when emitting `type` would reach someone. */
  wants(type: keyof Events): boolean {
    return this.listeners[type] !== undefined || this.channel.hasSubscribers;
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const message = event as Events[K] & EventMeta;
    message.type = type as string;
    message.policy = this.policy;
    const list = this.listeners[type];
    if (list !== undefined) {
      for (const listener of list) {
        try {
          listener(message);
        } catch (error) {
          // A listener's bug must not change the outcome of the call it observes.
          process.emitWarning(`bulwark: a ${this.kind} "${String(type)}" listener threw: ${String(error)}`);
        }
      }
    }
    if (this.channel.hasSubscribers) this.channel.publish(message);
  }
}

/** Fields every event carries. */
export interface EventMeta {
  type: string;
  policy: string;
}
