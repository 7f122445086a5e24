/**
 * What an alert looks like wherever it surfaces: the `alert` event, `alerts()`,
 * `GET /alerts` and the webhook body are all this one plain, JSON-safe shape.
 */
import type { Severity } from './spec.js';

/** One burn-rate condition, evaluated: both windows' burn rates and whether both exceed the threshold. */
export interface ConditionStatus {
  severity: Severity;
  /** The threshold, a multiple of the sustainable error rate. */
  burnRate: number;
  longWindow: string;
  shortWindow: string;
  longBurnRate: number;
  shortBurnRate: number;
  /** True when both burn rates are strictly above `burnRate`. */
  met: boolean;
}

/**
 * One alert of one SLO at one severity. The SLO's conditions of that severity
 * are OR-ed, as in the rules Sloth generates: the alert fires when any holds
 * and resolves when none does.
 */
export interface SloAlert {
  /** Unique per firing: `<slo>/<severity>/<n>`; the webhook sends it as the `Idempotency-Key`. */
  id: string;
  slo: string;
  service: string;
  severity: Severity;
  state: 'firing' | 'resolved';
  /** Engine clock time (milliseconds) of the transition to firing. */
  firedAt: number;
  /** Wall time of the same moment, ISO 8601. */
  firedAtTime: string;
  resolvedAt: number | undefined;
  resolvedAtTime: string | undefined;
  /** The conditions of this severity as they stood at the last transition. */
  conditions: ConditionStatus[];
  /** Budget left over the SLO window at the last transition, as a fraction of the budget (negative when overspent). */
  budgetRemaining: number;
  labels: Record<string, string>;
}

/** Anything that accepts alert transitions without blocking the caller (a webhook, a test sink). */
export interface AlertSink {
  /** Takes a transition. Must return at once; delivery, if any, happens in the background. */
  notify(alert: SloAlert): void;
  /** Stops background work. */
  close?(): Promise<void> | void;
}
