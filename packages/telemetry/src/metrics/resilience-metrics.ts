/**
 * Policy metrics from the resilience diagnostics channels
 * (`bulwark:resilience:<kind>`), for every policy in the process, without
 * touching the policies: retries and give-ups, breaker state and transitions,
 * rejections by policy kind and reason, hedges and hedge wins, budget
 * exhaustion, timeouts and fallbacks.
 *
 * Subscribing makes the policies build their event objects (they skip it when
 * nobody listens); that is the whole cost.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { channelName, type PolicyKind } from '@bulwark/resilience';
import type { Metrics } from './metrics.js';

/** The numeric value of `bulwark_resilience_breaker_state` for each state. */
export const BREAKER_STATE_VALUES = { closed: 0, open: 1, 'half-open': 2, isolated: 3 } as const;

type Event = Record<string, unknown> & { type: string; policy: string };

/** Subscribes the policy metrics; returns the function that unsubscribes. */
export function instrumentResilience(metrics: Metrics): () => void {
  const retries = metrics.counter('bulwark_resilience_retries_total', 'Retries scheduled, by policy.', ['policy']);
  const giveUps = metrics.counter('bulwark_resilience_retry_give_ups_total', 'Calls a retry policy stopped retrying, by policy and reason.', ['policy', 'reason']);
  const budget = metrics.counter('bulwark_resilience_budget_exhausted_total', 'Retries or hedges refused by their budget, by policy and kind.', ['policy', 'kind']);
  const state = metrics.gauge('bulwark_resilience_breaker_state', 'Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 isolated.', ['policy']);
  const transitions = metrics.counter('bulwark_resilience_breaker_transitions_total', 'Circuit breaker state changes, by policy, from and to.', ['policy', 'from', 'to']);
  const rejections = metrics.counter('bulwark_resilience_rejections_total', 'Calls refused without running, by policy, kind and reason.', ['policy', 'kind', 'reason']);
  const hedges = metrics.counter('bulwark_resilience_hedges_total', 'Hedged attempts started, by policy.', ['policy']);
  const hedgeWins = metrics.counter('bulwark_resilience_hedge_wins_total', 'Calls a hedge (not the primary) answered first, by policy.', ['policy']);
  const timeouts = metrics.counter('bulwark_resilience_timeouts_total', 'Timeouts fired, by policy and scope (attempt or total).', ['policy', 'scope']);
  const fallbacks = metrics.counter('bulwark_resilience_fallbacks_total', 'Degraded answers from a fallback, by policy and outcome.', ['policy', 'outcome']);

  const handlers: Record<PolicyKind, (e: Event) => void> = {
    retry: (e) => {
      if (e.type === 'retry') retries.inc({ policy: e.policy });
      else if (e.type === 'giveUp') giveUps.inc({ policy: e.policy, reason: String(e.reason) });
      else if (e.type === 'budgetExhausted') budget.inc({ policy: e.policy, kind: 'retry' });
    },
    'circuit-breaker': (e) => {
      if (e.type === 'stateChange') {
        const to = String(e.to) as keyof typeof BREAKER_STATE_VALUES;
        transitions.inc({ policy: e.policy, from: String(e.from), to });
        state.set({ policy: e.policy }, BREAKER_STATE_VALUES[to] ?? -1);
      } else if (e.type === 'rejected') rejections.inc({ policy: e.policy, kind: 'circuit-breaker', reason: String(e.state) });
    },
    bulkhead: (e) => {
      if (e.type === 'rejected') rejections.inc({ policy: e.policy, kind: 'bulkhead', reason: String(e.reason) });
    },
    'rate-limiter': (e) => {
      if (e.type === 'rejected') rejections.inc({ policy: e.policy, kind: 'rate-limiter', reason: 'limited' });
    },
    hedge: (e) => {
      if (e.type === 'hedge') hedges.inc({ policy: e.policy });
      else if (e.type === 'hedgeWon') hedgeWins.inc({ policy: e.policy });
      else if (e.type === 'budgetExhausted') budget.inc({ policy: e.policy, kind: 'hedge' });
    },
    timeout: (e) => {
      if (e.type === 'timeout') timeouts.inc({ policy: e.policy, scope: e.total === true ? 'total' : 'attempt' });
    },
    fallback: (e) => {
      fallbacks.inc({ policy: e.policy, outcome: e.type === 'fallback' ? 'served' : 'failed' });
    },
  };

  const offs = (Object.keys(handlers) as PolicyKind[]).map((kind) => {
    const name = channelName(kind);
    const handle = handlers[kind];
    const listener = (message: unknown): void => {
      try {
        handle(message as Event);
      } catch {
        // a metric must never change the outcome of the call it observes
      }
    };
    subscribe(name, listener);
    return () => unsubscribe(name, listener);
  });
  return () => {
    for (const off of offs) off();
  };
}
