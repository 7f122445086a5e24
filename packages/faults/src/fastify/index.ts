/**
 * `@bulwark/faults/fastify`: inbound fault injection (`inboundFaults`, an
 * `onRequest` hook for the whole instance) and the runtime admin API
 * (`faultAdmin`, registered at a prefix behind the host's authentication).
 *
 * @example
 * ```ts
 * import { FaultInjector } from '@bulwark/faults';
 * import { faultAdmin, inboundFaults } from '@bulwark/faults/fastify';
 *
 * const injector = new FaultInjector({ seed: 7 });
 * await app.register(inboundFaults, { injector, modules: { payments: '/api/payments' } });
 * await app.register(faultAdmin, { prefix: '/admin/faults', injector, auth: requireOperator });
 * ```
 */
export { inboundFaults, FAULTS_EXEMPT, FAULT_HEADER, type InboundFaultsOptions } from './inbound.js';
export { faultAdmin, type FaultAdminOptions } from './admin.js';
