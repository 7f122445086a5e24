/**
 * Business counters: a funnel (`cart` → `payment` → `confirmed`) and plain
 * named counters, so product metrics sit next to RED metrics and SLOs can be
 * built on them.
 */
import type { Counter } from 'prom-client';
import { InvalidTelemetryOptionError, UnknownFunnelStepError, requireName } from '../errors.js';
import type { Metrics } from './metrics.js';

/** A declared funnel; `reached(step)` counts one unit reaching `step`. */
export interface Funnel {
  readonly name: string;
  readonly steps: readonly string[];
  /** Counts one (or `n`) reaching `step`. Throws `UnknownFunnelStepError` for a step not declared. */
  reached(step: string, n?: number): void;
  /** Count per step, in funnel order (for the console and tests). */
  counts(): Promise<Record<string, number>>;
}

/**
 * Declares a funnel on `bulwark_business_funnel_steps_total{funnel, step}`.
 * Every step's series exists from the start (at 0), so conversion ratios are
 * defined before the first purchase.
 *
 * @example
 * ```ts
 * const checkout = funnel(metrics, 'checkout', ['cart', 'payment', 'confirmed']);
 * checkout.reached('cart');
 * ```
 */
export function funnel(metrics: Metrics, name: string, declared: readonly string[]): Funnel {
  requireName('funnel', 'name', name);
  const steps: readonly unknown[] = Array.isArray(declared) ? declared : [];
  if (!Array.isArray(declared) || steps.length === 0 || steps.some((s) => typeof s !== 'string' || s === '') || new Set(steps).size !== steps.length) {
    throw new InvalidTelemetryOptionError('funnel', 'steps', steps, 'a non-empty list of distinct, non-empty step names');
  }
  const counter = metrics.counter('bulwark_business_funnel_steps_total', 'Units reaching each step of a business funnel, by funnel and step.', ['funnel', 'step']);
  const names = steps as readonly string[];
  const labels = new Map(names.map((step) => [step, { funnel: name, step }]));
  for (const l of labels.values()) counter.inc(l, 0);
  const frozen = Object.freeze([...names]);
  return {
    name,
    steps: frozen,
    reached(step: string, n = 1): void {
      const l = labels.get(step);
      if (l === undefined) throw new UnknownFunnelStepError(name, step, frozen);
      counter.inc(l, n);
    },
    async counts(): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      for (const step of frozen) out[step] = (await metrics.value('bulwark_business_funnel_steps_total', { funnel: name, step })) ?? 0;
      return out;
    },
  };
}

/** A business counter `bulwark_business_<name>_total` with the given labels. */
export function businessCounter(metrics: Metrics, name: string, help: string, labelNames: readonly string[] = []): Counter<string> {
  if (!/^[a-z][a-z0-9_]*$/.test(requireName('businessCounter', 'name', name))) throw new InvalidTelemetryOptionError('businessCounter', 'name', name, 'snake_case (letters, digits, underscores)');
  return metrics.counter(`bulwark_business_${name}_total`, help, labelNames);
}
