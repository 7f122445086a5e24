/**
 * USE metrics (utilisation, saturation, errors) for bounded resources:
 * bulkheads, connection pools, work queues. Read at scrape time from a
 * `stats()` function, so nothing runs on the hot path; errors (rejections)
 * come from the resilience events (`bulwark_resilience_rejections_total`) or
 * the resource's own counter.
 */
import type { Metrics } from './metrics.js';

/** A snapshot of a bounded resource. */
export interface ResourceStats {
  /** Units in use (active calls, checked-out connections, jobs running). */
  inUse: number;
  /** Units available in total. */
  capacity: number;
  /** Callers waiting for a unit (saturation). */
  waiting: number;
}

/** Anything with a `stats()` in the shape of `BulkheadPolicy.stats()`. */
export interface BulkheadLike {
  readonly name: string;
  stats(): { active: number; queued: number; maxConcurrent: number };
}

/**
 * Registers `bulwark_resource_in_use`, `_capacity`, `_waiting` and
 * `_utilization` for one resource (`kind` is e.g. `bulkhead`, `pool`,
 * `queue`). Returns the function that stops reporting it.
 */
export function watchResource(metrics: Metrics, kind: string, name: string, stats: () => ResourceStats): () => void {
  const sources = resourceSources(metrics);
  const key = `${kind}\u0000${name}`;
  sources.set(key, { kind, name, stats });
  return () => void sources.delete(key);
}

/** `watchResource` for a resilience bulkhead. */
export function watchBulkhead(metrics: Metrics, bulkhead: BulkheadLike): () => void {
  return watchResource(metrics, 'bulkhead', bulkhead.name, () => {
    const s = bulkhead.stats();
    return { inUse: s.active, capacity: s.maxConcurrent, waiting: s.queued };
  });
}

type Source = { kind: string; name: string; stats: () => ResourceStats };
const registries = new WeakMap<Metrics, Map<string, Source>>();

function resourceSources(metrics: Metrics): Map<string, Source> {
  let sources = registries.get(metrics);
  if (sources !== undefined) return sources;
  const map = new Map<string, Source>();
  sources = map;
  registries.set(metrics, map);
  const labels = ['kind', 'name'];
  const read = (field: keyof ResourceStats | 'utilization') =>
    function (this: { set(labels: Record<string, string>, value: number): void; reset(): void }): void {
      this.reset();
      for (const source of map.values()) {
        let s: ResourceStats;
        try {
          s = source.stats();
        } catch {
          continue;
        }
        const value = field === 'utilization' ? (s.capacity > 0 ? s.inUse / s.capacity : 0) : s[field];
        this.set({ kind: source.kind, name: source.name }, value);
      }
    };
  metrics.gauge('bulwark_resource_in_use', 'Units of a bounded resource in use, by kind and name.', labels, read('inUse'));
  metrics.gauge('bulwark_resource_capacity', 'Units of a bounded resource in total, by kind and name.', labels, read('capacity'));
  metrics.gauge('bulwark_resource_waiting', 'Callers waiting for a bounded resource (saturation), by kind and name.', labels, read('waiting'));
  metrics.gauge('bulwark_resource_utilization', 'In use / capacity of a bounded resource, by kind and name.', labels, read('utilization'));
  return sources;
}
