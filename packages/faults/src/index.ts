/**
 * `@bulwark/faults`: seeded fault injection for Bulwark services — latency
 * (fixed or drawn from a distribution), error answers, hangs, connection
 * resets, process crashes and partitions — per module, route or outgoing
 * dependency, from a rules file or a runtime admin API.
 *
 * This entry holds the rules, their validation and the injector (no I/O);
 * the transports are on subpaths: `@bulwark/faults/fastify` (inbound requests
 * and the admin API) and `@bulwark/faults/undici` (outbound calls).
 *
 * @example
 * ```ts
 * import { FaultInjector, readFaultFile } from '@bulwark/faults';
 *
 * const injector = new FaultInjector({ seed: 42 });
 * injector.replace(readFaultFile('./faults.json'));
 * injector.set('slow-payments', { kind: 'latency', direction: 'outbound', match: { dependency: 'payments' }, latency: { distribution: 'exponential', meanMs: 200 } });
 * ```
 */
export {
  FaultError,
  FaultConfigError,
  UnknownFaultRuleError,
  FaultOptionError,
  isFaultError,
  injectedFaultOf,
  faultErrorCodes,
  faultProblemTypes,
  FAULT_PROBLEM_BASE,
  type FaultErrorCode,
  type InjectedFault,
} from './errors.js';
export {
  FAULT_KINDS,
  FAULT_SIGNALS,
  MAX_DELAY_MS,
  MAX_HANG_MS,
  RULE_ID_PATTERN,
  validateFaultRule,
  validateFaultSet,
  validateLatency,
  validateRuleId,
  validateSeed,
  parseRoutePattern,
  matchesRoute,
  splitPath,
  type FaultKind,
  type FaultDirection,
  type FaultSignal,
  type FaultMatch,
  type FaultRule,
  type FaultRuleInput,
  type FaultSet,
  type LatencySpec,
  type RoutePattern,
  type ValidateOptions,
} from './rules.js';
export { ruleRandom, sampleLatency } from './random.js';
export { readFaultFile } from './file.js';
export {
  FaultInjector,
  FAULTS_CHANNEL,
  type FaultInjectorOptions,
  type FaultTarget,
  type FaultDecision,
  type AppliedFault,
  type LiftReason,
  type RuleStats,
  type FaultRuleWithStats,
  type FaultEvents,
  type FaultListener,
} from './injector.js';
