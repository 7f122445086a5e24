/**
 * The metrics hook: every finished request is published on the
 * `node:diagnostics_channel` channel `bulwark:http:request`, so telemetry can
 * count and time requests without this package importing it. Publishing
 * costs nothing when nobody subscribes.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe(HTTP_REQUEST_CHANNEL, (message) => {
 *   const e = message as HttpRequestEvent;
 *   histogram.labels(e.method, e.route, String(e.status)).observe(e.durationMs / 1000);
 * });
 * ```
 */
import { channel } from 'node:diagnostics_channel';

/** Name of the channel finished requests are published on. */
export const HTTP_REQUEST_CHANNEL = 'bulwark:http:request';

/** One finished request. */
export interface HttpRequestEvent {
  method: string;
  /** The route pattern (`/orders/:id`), never the raw URL; `"*"` when no route matched. */
  route: string;
  status: number;
  /** From the start of the request to the end of its response, in milliseconds. */
  durationMs: number;
  requestId: string;
}

/** The channel itself, for publishers and for `hasSubscribers` checks. */
export const httpRequestChannel = channel(HTTP_REQUEST_CHANNEL);
