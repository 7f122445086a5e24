/**
 * Fault-injection metrics from a fault injector's events (`@bulwark/faults`
 * is not imported: any object with the same `on('injected', ...)` will do),
 * so a dashboard shows which faults were active while the error rate moved:
 *
 * - `bulwark_faults_injected_total{rule,kind,direction}`: requests or calls a
 *   rule was applied to;
 * - `bulwark_faults_rules`: rules set right now (when the source can say);
 * - `bulwark_faults_held`: hung or blackholed requests and calls held right
 *   now (when the source can say).
 */
import type { Metrics } from './metrics.js';

/** What these metrics need from a fault injector. */
export interface FaultEventSource {
  on(event: 'injected', listener: (event: { rule: string; kind: string; direction: string }) => void): () => void;
  /** The rules set now. */
  rules?(): readonly unknown[];
  /** Faults held now. */
  readonly held?: number;
}

/** Counts `source`'s injections; returns the function that stops. */
export function instrumentFaults(metrics: Metrics, source: FaultEventSource): () => void {
  const injected = metrics.counter('bulwark_faults_injected_total', 'Requests or calls a fault rule was applied to, by rule, kind and direction.', ['rule', 'kind', 'direction']);
  const off = source.on('injected', (e) => injected.inc({ rule: e.rule, kind: e.kind, direction: e.direction }));
  if (typeof source.rules === 'function') {
    metrics.gauge('bulwark_faults_rules', 'Fault rules set in this process.', [], function collect() {
      this.set(source.rules?.().length ?? 0);
    });
  }
  if (typeof source.held === 'number') {
    metrics.gauge('bulwark_faults_held', 'Requests and calls held by a hang or partition fault right now.', [], function collect() {
      this.set(source.held ?? 0);
    });
  }
  return off;
}
