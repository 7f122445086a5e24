/**
 * Scenario files (YAML, or JSON, which is YAML): what to run against a
 * target — a workload, named faults, and phases that switch the faults on and
 * off at an offered rate. `parseScenario` validates every field and rejects a
 * bad file with `ScenarioError` naming `file:line:col` and the field (all the
 * problems found, the first one in `line`/`column`/`field`). The format is
 * described in README.md.
 */
import { readFileSync } from 'node:fs';
import { FAULT_KINDS, FAULT_SIGNALS, FaultConfigError, validateFaultRule, type FaultMatch, type FaultRuleInput, type LatencySpec } from '@bulwark/faults';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';

/** A fault rule as the admin API takes it (`PUT /admin/faults/:id`): `@bulwark/faults`'s rule, without its id. */
export type FaultRule = Omit<FaultRuleInput, 'id' | 'match'> & { match: FaultMatch };

/** Mix weights of the shop workload (relative; 0 or absent leaves a request kind out). */
export interface ShopMix {
  placeOrder?: number;
  productPage?: number;
  browse?: number;
  myOrders?: number;
}
const MIX_KEYS = ['placeOrder', 'productPage', 'browse', 'myOrders'] as const;
export const PAYMENT_METHODS = ['card_ok', 'card_declined', 'card_error'] as const;

export type WorkloadSpec =
  | { type: 'shop'; users: number; mix?: ShopMix; paymentMethod?: (typeof PAYMENT_METHODS)[number]; restock?: number }
  | { type: 'http'; method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; path: string; headers: Record<string, string>; body?: unknown };

/** A hop of the attempts table: calls counted at `to` per call counted at `from` (`METHOD /route` of the server counters, or `user`). */
export interface HopSpec {
  name: string;
  from: string;
  to: string;
}

export interface ScenarioPhase {
  name: string;
  /** Start, ms from the run's start (explicit `at`, or the previous phase's end). */
  atMs: number;
  durationMs: number;
  rate: number;
  rateTo?: number;
  /** Names of the faults on during this phase (every other fault is off). */
  faults: string[];
  /** Where the phase is written (1-based). */
  line: number;
}

export interface RecoverySpec {
  /** A bucket's goodput must be at least this fraction of the baseline's. Default 0.9. */
  goodputRatio: number;
  /** ... and its error rate at most the baseline's plus this (a fraction). Default 0.01 (1 point). */
  errorRateSlack: number;
  /** ... for this many consecutive buckets. Default 3. */
  buckets: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** The file it was read from (for messages), or `<inline>`. */
  file: string;
  target: { url?: string; faultAdmins?: string[]; metrics?: string[]; slo?: string[]; internalKeyEnv: string };
  /** The rate ceiling (arrivals per second) every phase was checked against. */
  maxRate: number;
  seed: number;
  /** Timeline bucket and sampling interval, ms. */
  intervalMs: number;
  timeoutMs?: number;
  maxInFlight?: number;
  connections?: number;
  workload: WorkloadSpec;
  faults: Record<string, FaultRule>;
  /** Line of each fault's definition. */
  faultLines: Record<string, number>;
  hops: HopSpec[];
  recovery: RecoverySpec;
  phases: ScenarioPhase[];
}

export interface ScenarioIssue {
  line: number;
  column: number;
  /** The field's path, e.g. `phases[1].faults[0]`. */
  field: string;
  message: string;
}

/** A scenario file that cannot be run; `line`/`column`/`field` locate the first problem, `issues` lists them all. */
export class ScenarioError extends Error {
  readonly line: number;
  readonly column: number;
  readonly field: string;
  constructor(
    readonly file: string,
    readonly issues: readonly ScenarioIssue[],
  ) {
    const first = issues[0] ?? { line: 1, column: 1, field: '', message: 'invalid scenario' };
    super(issues.map((i) => `${file}:${i.line}:${i.column}: ${i.field === '' ? '' : `${i.field}: `}${i.message}`).join('\n'));
    this.name = 'ScenarioError';
    this.line = first.line;
    this.column = first.column;
    this.field = first.field;
  }
}

export interface ParseOptions {
  /** Name shown in messages. Default `<inline>`. */
  file?: string;
  /** The hard ceiling of any rate (a file's `maxRate` may lower it, not raise it). Default 5,000/s. */
  maxRate?: number;
}

const DEFAULT_CEILING = 5_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROUTE = /^(GET|HEAD|POST|PUT|PATCH|DELETE) \/\S*$/;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `"1m30s"`, `"500ms"`, `"2.5s"` → milliseconds; undefined if not a duration. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let matched = false;
  while (re.lastIndex < text.length) {
    const m = re.exec(text);
    if (m === null) return undefined;
    total += Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1);
    matched = true;
  }
  return matched ? Math.round(total) : undefined;
}

/** `30000` → `30s`, `1500` → `1.5s`, `90000` → `1m30s`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  if (ms < 60_000 || ms % 1_000 !== 0) return `${Number((ms / 1_000).toFixed(3))}s`;
  const m = Math.floor(ms / 60_000);
  const s = (ms % 60_000) / 1_000;
  return s === 0 ? `${m}m` : `${m}m${s}s`;
}

type Entries = Map<string, { key: Node; value: Node | null }>;

class Checker {
  readonly issues: ScenarioIssue[] = [];
  constructor(private readonly lines: LineCounter) {}

  pos(node: Node | null | undefined): { line: number; column: number } {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  fail(node: Node | null | undefined, field: string, message: string): undefined {
    this.issues.push({ ...this.pos(node), field, message });
    return undefined;
  }

  /** The entries of a map node; unknown keys and missing required ones are issues. */
  map(node: Node | null, field: string, allowed: readonly string[], required: readonly string[] = []): Entries | undefined {
    if (!isMap(node)) return this.fail(node, field, `must be a mapping${allowed.length > 0 ? ` (keys: ${allowed.join(', ')})` : ''}`);
    const out: Entries = new Map();
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      const name = isScalar(key) ? String(key.value) : '';
      const path = field === '' ? name : `${field}.${name}`;
      if (!isScalar(key) || (allowed.length > 0 && !allowed.includes(name))) {
        this.fail(key ?? node, path, `unknown key "${name}"${allowed.length > 0 ? ` (expected one of: ${allowed.join(', ')})` : ''}`);
        continue;
      }
      out.set(name, { key, value: (pair.value as Node | null) ?? null });
    }
    for (const r of required) if (!out.has(r)) this.fail(node, field === '' ? r : `${field}.${r}`, 'is required');
    return out;
  }

  string(node: Node | null, field: string, pattern?: RegExp, hint?: string): string | undefined {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') return this.fail(node, field, 'must be a non-empty string');
    if (pattern !== undefined && !pattern.test(node.value)) return this.fail(node, field, `${JSON.stringify(node.value)} is not ${hint ?? `of the form ${String(pattern)}`}`);
    return node.value;
  }

  number(node: Node | null, field: string, min: number, max: number, integer = false): number | undefined {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
      return this.fail(node, field, `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${describe(node)}`);
    }
    return v;
  }

  duration(node: Node | null, field: string, minMs: number): number | undefined {
    const v = isScalar(node) ? node.value : undefined;
    const ms = typeof v === 'string' ? parseDuration(v.trim()) : undefined;
    if (ms === undefined) return this.fail(node, field, `must be a duration with a unit (e.g. 500ms, 10s, 1m30s), got ${describe(node)}`);
    if (ms < minMs) return this.fail(node, field, `must be at least ${formatDuration(minMs)}, got ${String(v)}`);
    return ms;
  }

  enumOf<T extends string>(node: Node | null, field: string, values: readonly T[]): T | undefined {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) return this.fail(node, field, `must be one of ${values.join(', ')}, got ${describe(node)}`);
    return v as T;
  }

  list(node: Node | null, field: string): Node[] | undefined {
    if (!isSeq(node)) return this.fail(node, field, 'must be a list');
    return node.items as Node[];
  }
}

function describe(node: Node | null): string {
  if (node === null) return 'nothing';
  if (isScalar(node)) return JSON.stringify(node.value) ?? String(node.value);
  return isMap(node) ? 'a mapping' : isSeq(node) ? 'a list' : 'something else';
}

const LATENCY_KEYS: Record<string, readonly string[]> = {
  uniform: ['minMs', 'maxMs'],
  exponential: ['meanMs'],
  lognormal: ['medianMs', 'sigma'],
  pareto: ['scaleMs', 'shape'],
};

function parseLatency(c: Checker, node: Node | null, field: string): LatencySpec | undefined {
  const m = c.map(node, field, []);
  if (m === undefined) return undefined;
  const dist = m.get('distribution');
  if (dist === undefined) {
    const e = c.map(node, field, ['fixedMs'], ['fixedMs']);
    const fixedMs = e?.get('fixedMs');
    const v = fixedMs === undefined ? undefined : c.number(fixedMs.value, `${field}.fixedMs`, 0, 600_000);
    return v === undefined ? undefined : { fixedMs: v };
  }
  const kind = c.enumOf(dist.value, `${field}.distribution`, ['uniform', 'exponential', 'lognormal', 'pareto'] as const);
  if (kind === undefined) return undefined;
  const keys = LATENCY_KEYS[kind] ?? [];
  const e = c.map(node, field, ['distribution', ...keys], keys);
  if (e === undefined) return undefined;
  const out: Record<string, unknown> = { distribution: kind };
  for (const k of keys) {
    const entry = e.get(k);
    if (entry === undefined) return undefined;
    const v = c.number(entry.value, `${field}.${k}`, k.endsWith('Ms') ? 0 : Number.MIN_VALUE, k.endsWith('Ms') ? 600_000 : 1_000);
    if (v === undefined) return undefined;
    out[k] = v;
  }
  if (kind === 'uniform' && (out.minMs as number) > (out.maxMs as number)) return c.fail(e.get('maxMs')?.value, `${field}.maxMs`, 'must be at least minMs');
  return out as LatencySpec;
}

function parseFault(c: Checker, node: Node | null, field: string): FaultRule | undefined {
  const issuesBefore = c.issues.length;
  const e = c.map(node, field, ['kind', 'direction', 'match', 'probability', 'latency', 'status', 'hangMs', 'signal'], ['kind']);
  if (e === undefined) return undefined;
  const kindEntry = e.get('kind');
  const kind = kindEntry === undefined ? undefined : c.enumOf(kindEntry.value, `${field}.kind`, FAULT_KINDS);
  const rule: Partial<FaultRule> = { kind, match: {} };
  const dir = e.get('direction');
  if (kind === 'partition') {
    if (dir !== undefined) c.fail(dir.key, `${field}.direction`, 'a partition has no direction');
  } else if (dir === undefined) {
    if (kind !== undefined) c.fail(node, `${field}.direction`, 'is required (inbound or outbound)');
  } else {
    rule.direction = c.enumOf(dir.value, `${field}.direction`, ['inbound', 'outbound'] as const);
  }
  const match = e.get('match');
  if (match !== undefined) {
    const m = c.map(match.value, `${field}.match`, ['module', 'route', 'dependency']);
    for (const [k, { value }] of m ?? []) {
      const s = c.string(value, `${field}.match.${k}`);
      if (s !== undefined) (rule.match as Record<string, string>)[k] = s;
    }
  }
  const p = e.get('probability');
  if (p !== undefined) rule.probability = c.number(p.value, `${field}.probability`, 0, 1);
  const latency = e.get('latency');
  if (latency !== undefined) rule.latency = parseLatency(c, latency.value, `${field}.latency`);
  else if (kind === 'latency') c.fail(node, `${field}.latency`, 'is required for a latency fault');
  const status = e.get('status');
  if (status !== undefined) rule.status = c.number(status.value, `${field}.status`, 0, 999, true);
  const hang = e.get('hangMs');
  if (hang !== undefined) rule.hangMs = c.number(hang.value, `${field}.hangMs`, 0, 3_600_000, true);
  const signal = e.get('signal');
  if (signal !== undefined) rule.signal = c.enumOf(signal.value, `${field}.signal`, FAULT_SIGNALS);
  if (kind === undefined) return undefined;
  const out = Object.fromEntries(Object.entries(rule).filter(([, v]) => v !== undefined)) as unknown as FaultRule;
  if (c.issues.length > issuesBefore) return undefined;
  // The shape is right: now what the fault admin will say about it (fields that do not apply to the
  // kind, status ranges, route patterns, which match fields go with which direction).
  try {
    validateFaultRule(out, { id: 'scenario' });
  } catch (error) {
    if (!(error instanceof FaultConfigError)) throw error;
    let at: Node | null | undefined = node;
    for (const key of error.field.split('.')) {
      const next: unknown = isMap(at) ? at.get(key, true) : undefined;
      if (next === undefined) break;
      at = next as Node;
    }
    return c.fail(at, `${field}.${error.field}`, error.reason);
  }
  return out;
}

function parseWorkload(c: Checker, node: Node | null): WorkloadSpec | undefined {
  const base = c.map(node, 'workload', []);
  const typeEntry = base?.get('type');
  if (base === undefined) return undefined;
  if (typeEntry === undefined) return c.fail(node, 'workload.type', 'is required (shop or http)');
  const type = c.enumOf(typeEntry.value, 'workload.type', ['shop', 'http'] as const);
  if (type === 'shop') {
    const e = c.map(node, 'workload', ['type', 'users', 'mix', 'paymentMethod', 'restock']);
    if (e === undefined) return undefined;
    const usersEntry = e.get('users');
    const users = usersEntry === undefined ? 10 : c.number(usersEntry.value, 'workload.users', 1, 10_000, true);
    let mix: ShopMix | undefined;
    const mixEntry = e.get('mix');
    if (mixEntry !== undefined) {
      const m = c.map(mixEntry.value, 'workload.mix', MIX_KEYS);
      mix = {};
      for (const [k, { value }] of m ?? []) {
        const w = c.number(value, `workload.mix.${k}`, 0, 1_000_000);
        if (w !== undefined) mix[k as keyof ShopMix] = w;
      }
      if (m !== undefined && Object.values(mix).every((w) => w <= 0)) c.fail(mixEntry.value, 'workload.mix', 'needs a positive weight');
    }
    const pm = e.get('paymentMethod');
    const paymentMethod = pm === undefined ? undefined : c.enumOf(pm.value, 'workload.paymentMethod', PAYMENT_METHODS);
    const rs = e.get('restock');
    const restock = rs === undefined ? undefined : c.number(rs.value, 'workload.restock', 0, 1_000_000_000, true);
    if (users === undefined) return undefined;
    return { type, users, ...(mix === undefined ? {} : { mix }), ...(paymentMethod === undefined ? {} : { paymentMethod }), ...(restock === undefined ? {} : { restock }) };
  }
  if (type === 'http') {
    const e = c.map(node, 'workload', ['type', 'method', 'path', 'headers', 'body'], ['path']);
    if (e === undefined) return undefined;
    const m = e.get('method');
    const method = m === undefined ? 'GET' : c.enumOf(m.value, 'workload.method', METHODS);
    const p = e.get('path');
    const path = p === undefined ? undefined : c.string(p.value, 'workload.path', /^\/\S*$/, 'a path starting with /');
    const headers: Record<string, string> = {};
    const h = e.get('headers');
    if (h !== undefined) {
      for (const [k, { value }] of c.map(h.value, 'workload.headers', []) ?? []) {
        const s = c.string(value, `workload.headers.${k}`);
        if (s !== undefined) headers[k] = s;
      }
    }
    const b = e.get('body');
    if (method === undefined || path === undefined) return undefined;
    return { type, method, path, headers, ...(b === undefined ? {} : { body: (b.value as { toJSON(): unknown } | null)?.toJSON() ?? null }) };
  }
  return undefined;
}

function urlList(c: Checker, node: Node | null, field: string): string[] | undefined {
  const items = c.list(node, field);
  if (items === undefined) return undefined;
  const out: string[] = [];
  items.forEach((item, i) => {
    const s = c.string(item, `${field}[${i}]`, /^https?:\/\/\S+$/, 'an http(s) URL');
    if (s !== undefined) out.push(s.replace(/\/+$/, ''));
  });
  return out;
}

/** Parses and validates a scenario; throws ScenarioError naming every bad line. */
export function parseScenario(text: string, options: ParseOptions = {}): Scenario {
  const file = options.file ?? '<inline>';
  const ceiling = options.maxRate ?? DEFAULT_CEILING;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      file,
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return { line, column: col, field: '', message: `YAML: ${e.message.split('\n')[0] ?? e.code}` };
      }),
    );
  }
  const c = new Checker(lines);
  const root = doc.contents as Node | null;
  const top = c.map(root, '', ['name', 'description', 'target', 'maxRate', 'seed', 'interval', 'timeout', 'maxInFlight', 'connections', 'workload', 'faults', 'hops', 'recovery', 'phases'], ['name', 'workload', 'phases']);
  if (top === undefined) throw new ScenarioError(file, c.issues);
  const get = (k: string): Node | null | undefined => top.get(k)?.value;
  const has = (k: string): boolean => top.has(k);

  const name = has('name') ? c.string(get('name') ?? null, 'name', NAME, 'a name (letters, digits, . _ -)') : undefined;
  const description = has('description') ? c.string(get('description') ?? null, 'description') : undefined;

  const target: Scenario['target'] = { internalKeyEnv: 'SHOP_INTERNAL_KEY' };
  if (has('target')) {
    const t = c.map(get('target') ?? null, 'target', ['url', 'faultAdmins', 'metrics', 'slo', 'internalKeyEnv']);
    for (const [k, { value }] of t ?? []) {
      if (k === 'url') target.url = c.string(value, 'target.url', /^https?:\/\/\S+$/, 'an http(s) URL')?.replace(/\/+$/, '');
      else if (k === 'internalKeyEnv') target.internalKeyEnv = c.string(value, 'target.internalKeyEnv', /^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') ?? target.internalKeyEnv;
      else target[k as 'faultAdmins' | 'metrics' | 'slo'] = urlList(c, value, `target.${k}`);
    }
  }

  let maxRate = ceiling;
  if (has('maxRate')) {
    const node = get('maxRate') ?? null;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v === 'number' && v > ceiling) c.fail(node, 'maxRate', `${v}/s is above the configured ceiling of ${ceiling}/s`);
    else maxRate = c.number(node, 'maxRate', 0, ceiling) ?? ceiling;
  }
  const seed = has('seed') ? (c.number(get('seed') ?? null, 'seed', 0, 2 ** 31 - 1, true) ?? 1) : 1;
  const intervalMs = has('interval') ? (c.duration(get('interval') ?? null, 'interval', 100) ?? 1_000) : 1_000;
  const timeoutMs = has('timeout') ? c.duration(get('timeout') ?? null, 'timeout', 1) : undefined;
  const maxInFlight = has('maxInFlight') ? c.number(get('maxInFlight') ?? null, 'maxInFlight', 1, 100_000, true) : undefined;
  const connections = has('connections') ? c.number(get('connections') ?? null, 'connections', 1, 10_000, true) : undefined;
  const workload = has('workload') ? parseWorkload(c, get('workload') ?? null) : undefined;

  const faults: Record<string, FaultRule> = {};
  const faultLines: Record<string, number> = {};
  if (has('faults')) {
    const f = c.map(get('faults') ?? null, 'faults', []);
    for (const [k, { key, value }] of f ?? []) {
      if (!NAME.test(k)) {
        c.fail(key, `faults.${k}`, 'a fault name is letters, digits, . _ - (at most 64)');
        continue;
      }
      const rule = parseFault(c, value, `faults.${k}`);
      faultLines[k] = c.pos(key).line;
      if (rule !== undefined) faults[k] = rule;
    }
  }

  const hops: HopSpec[] = [];
  if (has('hops')) {
    (c.list(get('hops') ?? null, 'hops') ?? []).forEach((item, i) => {
      const field = `hops[${i}]`;
      const e = c.map(item, field, ['name', 'from', 'to'], ['from', 'to']);
      if (e === undefined) return;
      const endpoint = (k: 'from' | 'to'): string | undefined => {
        const v = e.get(k);
        if (v === undefined) return undefined;
        const s = c.string(v.value, `${field}.${k}`);
        if (s === undefined) return undefined;
        if (s === 'user' || ROUTE.test(s)) return s;
        return c.fail(v.value, `${field}.${k}`, `${JSON.stringify(s)} is not "user" or "METHOD /route" (e.g. "POST /api/payments/charges")`);
      };
      const from = endpoint('from');
      const to = endpoint('to');
      const n = e.get('name');
      const hopName = n === undefined ? `${from} → ${to}` : c.string(n.value, `${field}.name`);
      if (from !== undefined && to !== undefined && hopName !== undefined) hops.push({ name: hopName, from, to });
    });
  }

  const recovery: RecoverySpec = { goodputRatio: 0.9, errorRateSlack: 0.01, buckets: 3 };
  if (has('recovery')) {
    const r = c.map(get('recovery') ?? null, 'recovery', ['goodputRatio', 'errorRateSlack', 'buckets']);
    const g = r?.get('goodputRatio');
    if (g !== undefined) recovery.goodputRatio = c.number(g.value, 'recovery.goodputRatio', 0, 1) ?? recovery.goodputRatio;
    const s = r?.get('errorRateSlack');
    if (s !== undefined) recovery.errorRateSlack = c.number(s.value, 'recovery.errorRateSlack', 0, 1) ?? recovery.errorRateSlack;
    const b = r?.get('buckets');
    if (b !== undefined) recovery.buckets = c.number(b.value, 'recovery.buckets', 1, 1_000, true) ?? recovery.buckets;
  }

  const phases: ScenarioPhase[] = [];
  if (has('phases')) {
    const items = c.list(get('phases') ?? null, 'phases') ?? [];
    if (isSeq(get('phases')) && items.length === 0) c.fail(get('phases'), 'phases', 'needs at least one phase');
    let previous: { name: string; endMs: number; line: number } | undefined;
    const names = new Set<string>();
    items.forEach((item, i) => {
      const field = `phases[${i}]`;
      const e = c.map(item, field, ['name', 'at', 'duration', 'rate', 'rateTo', 'faults'], ['name', 'duration', 'rate']);
      if (e === undefined) return;
      const line = c.pos(item).line;
      const nameEntry = e.get('name');
      let phaseName = nameEntry === undefined ? undefined : c.string(nameEntry.value, `${field}.name`, NAME, 'a name (letters, digits, . _ -)');
      if (phaseName !== undefined && names.has(phaseName)) phaseName = c.fail(nameEntry?.value, `${field}.name`, `phase "${phaseName}" is defined twice`);
      if (phaseName !== undefined) names.add(phaseName);
      const d = e.get('duration');
      const durationMs = d === undefined ? undefined : c.duration(d.value, `${field}.duration`, 1);
      const rateOf = (k: 'rate' | 'rateTo'): number | undefined => {
        const entry = e.get(k);
        if (entry === undefined) return undefined;
        const v = isScalar(entry.value) ? entry.value.value : undefined;
        if (typeof v === 'number' && Number.isFinite(v) && v > maxRate) {
          return c.fail(entry.value, `${field}.${k}`, `${v}/s is above the ceiling maxRate ${maxRate}/s`);
        }
        return c.number(entry.value, `${field}.${k}`, 0, maxRate);
      };
      const rate = rateOf('rate');
      const rateTo = rateOf('rateTo');
      const faultNames: string[] = [];
      const fe = e.get('faults');
      if (fe !== undefined) {
        (c.list(fe.value, `${field}.faults`) ?? []).forEach((f, k) => {
          const s = c.string(f, `${field}.faults[${k}]`);
          if (s === undefined) return;
          if (faultLines[s] === undefined) {
            const known = Object.keys(faultLines);
            c.fail(f, `${field}.faults[${k}]`, `unknown fault "${s}" (${known.length > 0 ? `defined under faults: ${known.join(', ')}` : 'no faults are defined'})`);
          } else if (faultNames.includes(s)) c.fail(f, `${field}.faults[${k}]`, `fault "${s}" is listed twice`);
          else faultNames.push(s);
        });
      }
      let atMs = previous?.endMs ?? 0;
      const at = e.get('at');
      if (at !== undefined) {
        const v = c.duration(at.value, `${field}.at`, 0);
        if (v !== undefined) {
          if (previous !== undefined && v < previous.endMs) {
            c.fail(at.value, `${field}.at`, `phase "${phaseName ?? i}" starts at ${formatDuration(v)}, before phase "${previous.name}" (line ${previous.line}) ends at ${formatDuration(previous.endMs)}: phases overlap`);
          }
          atMs = v;
        }
      }
      if (phaseName === undefined || durationMs === undefined || rate === undefined) {
        // Still advance the clock so later overlaps are measured from something sensible.
        if (durationMs !== undefined) previous = { name: phaseName ?? String(i), endMs: atMs + durationMs, line };
        return;
      }
      phases.push({ name: phaseName, atMs, durationMs, rate, ...(rateTo === undefined ? {} : { rateTo }), faults: faultNames, line });
      previous = { name: phaseName, endMs: atMs + durationMs, line };
    });
  }

  if (c.issues.length > 0 || name === undefined || workload === undefined) throw new ScenarioError(file, c.issues.length > 0 ? c.issues : [{ line: 1, column: 1, field: '', message: 'incomplete scenario' }]);
  return {
    name,
    description: description ?? '',
    file,
    target,
    maxRate,
    seed,
    intervalMs,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
    ...(connections === undefined ? {} : { connections }),
    workload,
    faults,
    faultLines,
    hops,
    recovery,
    phases,
  };
}

/** Reads and parses a scenario file. */
export function loadScenario(path: string, options: Omit<ParseOptions, 'file'> = {}): Scenario {
  return parseScenario(readFileSync(path, 'utf8'), { ...options, file: path });
}
