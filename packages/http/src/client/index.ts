/**
 * `@bulwark/http/client`: a resilient undici client per dependency — pooled
 * connections, a `@bulwark/resilience` pipeline (retry with budget, breaker,
 * timeout, deadline), deadline and trace propagation, automatic
 * Idempotency-Keys on unsafe methods, a response size cap, and typed errors
 * that carry the status and problem details.
 *
 * @example
 * ```ts
 * import { createClient, HttpStatusError } from '@bulwark/http/client';
 *
 * const inventory = createClient({ baseUrl: 'http://inventory:8080', name: 'inventory', timeoutMs: 300 });
 * try { await inventory.post('/reservations', { sku, qty }) }
 * catch (e) { if (e instanceof HttpStatusError && e.status === 409) return outOfStock(e.problem) ; throw e }
 * ```
 */
export * from './errors.js';
export { HttpClient, createClient, CLIENT_OPEN_DURATION, type ClientOptions, type PoolOptions, type RequestOptions, type CallOptions, type ClientResponse, type HttpMethod } from './client.js';
export { addContextHeaders } from './trace-headers.js';
