/**
 * A small reader of the Prometheus text exposition format (what `/metrics`
 * answers without OpenMetrics negotiation): samples by metric name, with
 * their labels. Enough for counters and gauges; histogram buckets are samples
 * like any other.
 */

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Samples by metric name (`bulwark_http_server_requests_total` → its series). */
export type Metrics = Map<string, Sample[]>;

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (re.lastIndex >= text.length) break;
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    if (brace !== -1 && (space === -1 || brace < space)) {
      name = line.slice(0, brace);
      // The closing brace: the first `}` outside a quoted label value.
      let i = brace + 1;
      let quoted = false;
      for (; i < line.length; i++) {
        const ch = line[i];
        if (ch === '\\' && quoted) i++;
        else if (ch === '"') quoted = !quoted;
        else if (ch === '}' && !quoted) break;
      }
      labels = parseLabels(line.slice(brace + 1, i));
      rest = line.slice(i + 1).trim();
    } else {
      name = line.slice(0, space === -1 ? line.length : space);
      rest = space === -1 ? '' : line.slice(space + 1).trim();
    }
    const value = parseValue(rest.split(/\s+/)[0] ?? '');
    if (Number.isNaN(value)) continue;
    const list = out.get(name) ?? [];
    list.push({ labels, value });
    out.set(name, list);
  }
  return out;
}

/** Merges several processes' metrics (the services topology): the series of each name, side by side. */
export function mergeMetrics(all: readonly Metrics[]): Metrics {
  const out: Metrics = new Map();
  for (const m of all) for (const [name, samples] of m) out.set(name, [...(out.get(name) ?? []), ...samples]);
  return out;
}

/** The sum of `name`'s samples whose labels match `where` (every given label equal). */
export function sumOf(metrics: Metrics, name: string, where: Record<string, string> = {}): number {
  let total = 0;
  for (const s of metrics.get(name) ?? []) {
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** `name`'s samples summed by the value of one or more labels (`['method', 'route']` → `"POST /api/orders"`). */
export function sumBy(metrics: Metrics, name: string, by: readonly string[], where: Record<string, string> = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of metrics.get(name) ?? []) {
    if (!Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue;
    const key = by.map((l) => s.labels[l] ?? '').join(' ');
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}
