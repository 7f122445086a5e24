/**
 * The ambient context of the request being served: its id and the W3C trace
 * context it arrived with. The service kit sets it for each request; the
 * client reads it to propagate `x-request-id` and `traceparent` on outgoing
 * calls when no tracer has already done so.
 *
 * On demand: on Node 20 an active AsyncLocalStorage puts a hook on every
 * promise and every async resource in the process (about 1.5 µs per request
 * of a small JSON route, a tenth of its cost), so the kit enters the context
 * only once the process has said it reads it: `createClient()` (the client
 * propagates it), `currentRequestContext()` itself, `useRequestContext()`, or
 * the kit's `requestContext: 'always'`. Until then `request.requestContext`
 * carries the same values and nothing is hooked.
 *
 * The storage and that flag live on `globalThis` under `Symbol.for` keys so
 * that two installed copies of this package share one context.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  readonly requestId: string;
  /** The incoming `traceparent`, when it was present and well formed. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

const KEY = Symbol.for('bulwark.http.request-context');
const IN_USE = Symbol.for('bulwark.http.request-context.in-use');
const holder = globalThis as { [KEY]?: AsyncLocalStorage<RequestContext>; [IN_USE]?: boolean };
const storage: AsyncLocalStorage<RequestContext> = (holder[KEY] ??= new AsyncLocalStorage<RequestContext>());

/**
 * The context of the request being served, or `undefined` outside one. The
 * first call also switches the ambient context on for the requests that start
 * after it (see `useRequestContext()` to switch it on before the first request).
 */
export function currentRequestContext(): RequestContext | undefined {
  if (holder[IN_USE] !== true) holder[IN_USE] = true;
  return storage.getStore();
}

/**
 * Declares that this process reads the ambient request context
 * (`currentRequestContext()`): from now on the service kit enters it for every
 * request. `createClient()` calls it; call it at start-up when your own code
 * reads the ambient context, so that even the first request has it.
 */
export function useRequestContext(): void {
  holder[IN_USE] = true;
}

/** True once something in the process has declared it reads the ambient request context. */
export function requestContextInUse(): boolean {
  return holder[IN_USE] === true;
}

/** Runs `fn` (and everything it starts) with `context` as the current request context. */
export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** Enters `context` for the rest of the current synchronous execution and its async continuations (for hooks that cannot wrap). */
export function enterRequestContext(context: RequestContext): void {
  storage.enterWith(context);
}
