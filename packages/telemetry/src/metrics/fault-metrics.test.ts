import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { instrumentFaults, type FaultEventSource } from './fault-metrics.js';
import { Metrics } from './metrics.js';

/** The smallest fault event source: what `@bulwark/faults`' injector offers, without importing it. */
function source() {
  const listeners: ((e: { rule: string; kind: string; direction: string }) => void)[] = [];
  const rules: string[] = [];
  const s = {
    held: 0,
    rules: () => rules,
    on(_event: 'injected', listener: (e: { rule: string; kind: string; direction: string }) => void) {
      listeners.push(listener);
      return () => void listeners.splice(listeners.indexOf(listener), 1);
    },
    inject(rule: string, kind: string, direction: string) {
      for (const l of listeners) l({ rule, kind, direction });
    },
    addRule: (id: string) => rules.push(id),
  };
  return s satisfies FaultEventSource;
}

describe('fault metrics', () => {
  it('counts injections by rule, kind and direction, and reports rules set and faults held', async () => {
    const metrics = new Metrics();
    const faults = source();
    const stop = instrumentFaults(metrics, faults);
    faults.addRule('payments-down');
    faults.addRule('slow-recs');
    faults.held = 3;
    faults.inject('payments-down', 'error', 'inbound');
    faults.inject('payments-down', 'error', 'inbound');
    faults.inject('slow-recs', 'latency', 'outbound');
    stop();
    faults.inject('payments-down', 'error', 'inbound');
    const { body } = await metrics.scrape('text/plain');
    assert.match(body, /bulwark_faults_injected_total\{rule="payments-down",kind="error",direction="inbound"\} 2/);
    assert.match(body, /bulwark_faults_injected_total\{rule="slow-recs",kind="latency",direction="outbound"\} 1/);
    assert.match(body, /bulwark_faults_rules 2/);
    assert.match(body, /bulwark_faults_held 3/);
  });
});
