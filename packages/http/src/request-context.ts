/**
 * The ambient context of the request being served: its id and the W3C trace
 * context it arrived with. The service kit sets it for each request; the
 * client reads it to propagate `x-request-id` and `traceparent` on outgoing
 * calls when no tracer has already done so.
 *
 * The storage lives on `globalThis` under a `Symbol.for` key so that two
 * installed copies of this package share one context.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  readonly requestId: string;
  /** The incoming `traceparent`, when it was present and well formed. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

const KEY = Symbol.for('bulwark.http.request-context');
const holder = globalThis as { [KEY]?: AsyncLocalStorage<RequestContext> };
const storage: AsyncLocalStorage<RequestContext> = (holder[KEY] ??= new AsyncLocalStorage<RequestContext>());

/** The context of the request being served, or `undefined` outside one. */
export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

/** Runs `fn` (and everything it starts) with `context` as the current request context. */
export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** Enters `context` for the rest of the current synchronous execution and its async continuations (for hooks that cannot wrap). */
export function enterRequestContext(context: RequestContext): void {
  storage.enterWith(context);
}
