/**
 * `@bulwark/faults/undici`: outbound fault injection as an undici
 * interceptor, for one caller and one callee.
 *
 * @example
 * ```ts
 * import { Pool } from 'undici';
 * import { faultInterceptor } from '@bulwark/faults/undici';
 *
 * const pool = new Pool(origin).compose(faultInterceptor(injector, { module: 'orders', dependency: 'payments' }));
 * ```
 */
export { faultInterceptor, type FaultInterceptorOptions } from './interceptor.js';
