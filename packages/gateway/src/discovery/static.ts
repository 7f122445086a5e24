/** Static discovery: a fixed list of instances. */
import type { Instance } from '../balancing/types.js';
import type { DiscoverySource, StaticInstance } from './types.js';

/** Normalises static instances: origin-only URL, id defaults to it, weight defaults to 1. */
export function toInstances(list: readonly StaticInstance[]): Instance[] {
  const seen = new Set<string>();
  return list.map((entry, i) => {
    const spec = typeof entry === 'string' ? { url: entry } : entry;
    const url = normaliseOrigin(spec.url, `instances[${i}].url`);
    const id = spec.id ?? url;
    if (seen.has(id)) throw new TypeError(`upstream instances[${i}]: id "${id}" appears twice`);
    seen.add(id);
    const weight = spec.weight ?? 1;
    if (!(Number.isFinite(weight) && weight > 0)) throw new TypeError(`upstream instances[${i}].weight must be a positive number, got ${String(weight)}`);
    return Object.freeze({ id, url, weight, metadata: Object.freeze({ ...(spec.metadata ?? {}) }) });
  });
}

/** `http://host:port` from a URL string (no path, no trailing slash). */
export function normaliseOrigin(url: string, what = 'url'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`upstream ${what} is not a valid URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`upstream ${what} must be http(s), got ${JSON.stringify(url)}`);
  return parsed.origin;
}

/** A discovery source that reports `list` once. */
export function staticDiscovery(list: readonly StaticInstance[]): DiscoverySource {
  const instances = toInstances(list);
  return {
    start(update) {
      update(instances);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}
