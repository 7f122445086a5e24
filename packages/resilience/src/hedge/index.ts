/**
 * Hedged requests: the `hedge` policy, its budget and the latency quantile
 * estimator behind its adaptive delay.
 *
 * @example
 * ```ts
 * import { hedge, HedgeBudget } from '@bulwark/resilience';
 *
 * const budget = new HedgeBudget({ ratio: 0.05 });
 * const search = hedge({ delay: { quantile: 0.95, initialMs: 80 }, maxHedges: 1, budget });
 * ```
 */
export { hedge, HedgePolicy, type HedgeOptions, type HedgeEvents, type QuantileDelay } from './hedge-policy.js';
export { HedgeBudget, type HedgeBudgetOptions, type HedgeBudgetSnapshot } from './hedge-budget.js';
export { LatencyQuantile, type LatencyQuantileOptions } from './latency-quantile.js';
