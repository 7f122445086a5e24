/**
 * Fault rules: their types, their validation (every refusal a
 * `FaultConfigError` naming the field) and their normal form.
 *
 * A rule says what to do (`kind`), to which traffic (`direction` and
 * `match`), how often (`probability`) and with which parameters (`latency`,
 * `status`, `hangMs`, `signal`). Fields that do not apply to the kind are
 * refused rather than ignored, and so are unknown fields: a typo in a fault
 * rule should not silently turn it into a rule that does something else.
 *
 * @example
 * ```ts
 * const rule = validateFaultRule({ kind: 'latency', direction: 'outbound', match: { dependency: 'payments' },
 *   latency: { distribution: 'lognormal', medianMs: 80, sigma: 0.6 } }, { id: 'slow-payments' });
 * ```
 */
import { FaultConfigError, describe } from './errors.js';

export const FAULT_KINDS = ['latency', 'error', 'hang', 'reset', 'crash', 'partition'] as const;
/** What a rule does to the traffic it matches. */
export type FaultKind = (typeof FAULT_KINDS)[number];
/** Inbound: requests this process serves. Outbound: calls it makes. */
export type FaultDirection = 'inbound' | 'outbound';
export const FAULT_SIGNALS = ['SIGKILL', 'SIGTERM'] as const;
export type FaultSignal = (typeof FAULT_SIGNALS)[number];

/** A delay: fixed, or drawn from a distribution (with the rule's own seeded random source). */
export type LatencySpec =
  | { fixedMs: number }
  | { distribution: 'uniform'; minMs: number; maxMs: number }
  | { distribution: 'exponential'; meanMs: number }
  | { distribution: 'lognormal'; medianMs: number; sigma: number }
  | { distribution: 'pareto'; scaleMs: number; shape: number };

/**
 * Which traffic a rule applies to; every given field must match, an empty
 * match matches all traffic of the rule's direction.
 */
export interface FaultMatch {
  /** Inbound: requests under the module's path prefix. Outbound: calls made by the module's code. */
  module?: string;
  /** Inbound only: `"METHOD /path/pattern"` or `"/path/pattern"`; `*` is one segment, a trailing `**` the rest. */
  route?: string;
  /** Outbound only: the callee (a dependency name the call's client answers to). */
  dependency?: string;
}

/** A rule in normal form (defaults filled in), as the injector holds it and the admin API shows it. */
export interface FaultRule {
  id: string;
  kind: FaultKind;
  /** Absent only on a partition, which then applies to both directions. */
  direction?: FaultDirection;
  match: FaultMatch;
  /** Share of matching traffic the fault is applied to, 0..1. */
  probability: number;
  /** Required for `latency`; for `error` and `reset`, a delay before the failure. */
  latency?: LatencySpec;
  /** `error`: the status answered (500..599 or 429). */
  status?: number;
  /** `hang`/`partition`: give up after this long (the connection is reset); absent: until the caller goes away. */
  hangMs?: number;
  /** `crash`: the signal the process sends itself. */
  signal?: FaultSignal;
}

/** A rule as written (by hand, in a file, in a request body): defaults may be left out. */
export type FaultRuleInput = Omit<FaultRule, 'probability' | 'match'> & { probability?: number; match?: FaultMatch };

/** A whole rule set: what a rules file holds and `PUT /admin/faults` takes. */
export interface FaultSet {
  /** Replaces the injector's seed when given. */
  seed?: number;
  rules: FaultRule[];
}

export interface ValidateOptions {
  /** Module names `match.module` may take (a typo is refused). Default: any. */
  modules?: readonly string[];
}

/** Longest delay a rule may ask for (and the cap on a drawn one): 10 minutes. */
export const MAX_DELAY_MS = 600_000;
/** Longest `hangMs`: 24 hours. */
export const MAX_HANG_MS = 86_400_000;
export const RULE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const NAME_MAX = 256;

const RULE_FIELDS = ['id', 'kind', 'direction', 'match', 'probability', 'latency', 'status', 'hangMs', 'signal', 'stats'] as const;
/** Which optional parameters each kind takes (the others are refused). */
const KIND_FIELDS: Record<FaultKind, readonly ('latency' | 'status' | 'hangMs' | 'signal')[]> = {
  latency: ['latency'],
  error: ['latency', 'status'],
  hang: ['hangMs'],
  reset: ['latency'],
  crash: ['signal'],
  partition: ['hangMs'],
};

type Obj = Record<string, unknown>;

const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

function object(value: unknown, field: string): Obj {
  if (!isObject(value)) throw new FaultConfigError(field, `must be an object, got ${describe(value)}`);
  return value;
}

function onlyKeys(value: Obj, allowed: readonly string[], prefix: string, what: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new FaultConfigError(join(prefix, key), `is not a field of ${what} (expected ${allowed.join(', ')})`);
  }
}

const join = (prefix: string, key: string): string => (prefix === '' ? key : `${prefix}.${key}`);

function number(value: unknown, field: string, min: number, max: number, options: { above?: boolean; integer?: boolean } = {}): number {
  const ok = typeof value === 'number' && Number.isFinite(value) && (options.integer !== true || Number.isInteger(value)) && (options.above === true ? value > min : value >= min) && value <= max;
  if (!ok) {
    const what = options.integer === true ? 'an integer' : 'a number';
    const range = options.above === true ? `above ${min} and at most ${max}` : `from ${min} to ${max}`;
    throw new FaultConfigError(field, `must be ${what} ${range}, got ${describe(value)}`);
  }
  return value;
}

function name(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > NAME_MAX) throw new FaultConfigError(field, `must be a non-empty string of at most ${NAME_MAX} characters, got ${describe(value)}`);
  return value;
}

function oneOf<T extends string>(value: unknown, field: string, values: readonly T[]): T {
  if (typeof value !== 'string' || !values.includes(value as T)) throw new FaultConfigError(field, `must be one of ${values.join(', ')}, got ${describe(value)}`);
  return value as T;
}

/** A rule id: 1 to 64 letters, digits, `.`, `_` or `-`. */
export function validateRuleId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !RULE_ID_PATTERN.test(value)) throw new FaultConfigError(field, `must be 1 to 64 letters, digits, ".", "_" or "-", got ${describe(value)}`);
  return value;
}

/** A seed: a non-negative safe integer. */
export function validateSeed(value: unknown, field = 'seed'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new FaultConfigError(field, `must be a non-negative integer, got ${describe(value)}`);
  return value;
}

/** Validates a latency spec; fields named under `prefix` (`latency`). */
export function validateLatency(input: unknown, prefix = 'latency'): LatencySpec {
  const spec = object(input, prefix);
  const f = (key: string) => join(prefix, key);
  const delay = (key: string) => number(spec[key], f(key), 0, MAX_DELAY_MS);
  if ('fixedMs' in spec) {
    onlyKeys(spec, ['fixedMs'], prefix, 'a fixed latency');
    return { fixedMs: delay('fixedMs') };
  }
  if (!('distribution' in spec)) throw new FaultConfigError(prefix, 'must have "fixedMs" or a "distribution" (uniform, exponential, lognormal, pareto)');
  const distribution = oneOf(spec.distribution, f('distribution'), ['uniform', 'exponential', 'lognormal', 'pareto'] as const);
  switch (distribution) {
    case 'uniform': {
      onlyKeys(spec, ['distribution', 'minMs', 'maxMs'], prefix, 'a uniform latency');
      const minMs = delay('minMs');
      const maxMs = delay('maxMs');
      if (maxMs < minMs) throw new FaultConfigError(f('maxMs'), `must not be below minMs (${minMs}), got ${maxMs}`);
      return { distribution, minMs, maxMs };
    }
    case 'exponential':
      onlyKeys(spec, ['distribution', 'meanMs'], prefix, 'an exponential latency');
      return { distribution, meanMs: number(spec.meanMs, f('meanMs'), 0, MAX_DELAY_MS, { above: true }) };
    case 'lognormal':
      onlyKeys(spec, ['distribution', 'medianMs', 'sigma'], prefix, 'a lognormal latency');
      return { distribution, medianMs: number(spec.medianMs, f('medianMs'), 0, MAX_DELAY_MS, { above: true }), sigma: number(spec.sigma, f('sigma'), 0, 5) };
    case 'pareto':
      onlyKeys(spec, ['distribution', 'scaleMs', 'shape'], prefix, 'a pareto latency');
      return { distribution, scaleMs: number(spec.scaleMs, f('scaleMs'), 0, MAX_DELAY_MS, { above: true }), shape: number(spec.shape, f('shape'), 0, 100, { above: true }) };
  }
}

/** A compiled route pattern. */
export interface RoutePattern {
  method: string | undefined;
  segments: readonly string[];
  /** A trailing `**`: any number of further segments (none included). */
  rest: boolean;
}

/**
 * Parses `"METHOD /path/pattern"` or `"/path/pattern"`: `*` stands for one
 * whole segment, a trailing `**` for the rest of the path (zero or more
 * segments). A method matches exactly (`GET` does not match `HEAD`).
 */
export function parseRoutePattern(value: unknown, field = 'match.route'): RoutePattern {
  const text = name(value, field);
  const m = /^(?:([A-Z]+) )?(\/\S*)$/.exec(text);
  if (m === null) throw new FaultConfigError(field, `must be "METHOD /path" or "/path" (an uppercase method, one space, a path starting with "/"), got ${describe(value)}`);
  const path = m[2] as string;
  if (/[?#]/.test(path)) throw new FaultConfigError(field, `must be a path without query or fragment, got ${describe(value)}`);
  const segments = splitPath(path);
  let rest = false;
  segments.forEach((segment, i) => {
    if (segment === '**') {
      if (i !== segments.length - 1) throw new FaultConfigError(field, `may have "**" only as its last segment, got ${describe(value)}`);
      rest = true;
    } else if (segment.includes('*') && segment !== '*') {
      throw new FaultConfigError(field, `may use "*" only as a whole segment, got ${describe(value)}`);
    }
  });
  if (rest) segments.pop();
  return { method: m[1], segments, rest };
}

/** A path's segments (`/a/b/` -> `['a', 'b']`; `/` -> `[]`), without the query. */
export function splitPath(path: string): string[] {
  const q = path.search(/[?#]/);
  const bare = q < 0 ? path : path.slice(0, q);
  const parts = bare.split('/');
  parts.shift();
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Whether `pattern` matches a request (its method and its path's segments). */
export function matchesRoute(pattern: RoutePattern, method: string, segments: readonly string[]): boolean {
  if (pattern.method !== undefined && pattern.method !== method) return false;
  const n = pattern.segments.length;
  if (pattern.rest ? segments.length < n : segments.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const want = pattern.segments[i] as string;
    if (want !== '*' && want !== segments[i]) return false;
  }
  return true;
}

/**
 * Validates one rule and returns it in normal form. `options.id` is the id
 * given out of band (the `:id` of `PUT /admin/faults/:id`): the body may then
 * leave `id` out, or repeat it. Fields are named from the rule's root.
 */
export function validateFaultRule(input: unknown, options: ValidateOptions & { id?: string } = {}): FaultRule {
  const raw = object(input, '(root)');
  onlyKeys(raw, RULE_FIELDS, '', 'a fault rule');
  let id: string;
  if (options.id !== undefined) {
    id = validateRuleId(options.id, 'id');
    if (raw.id !== undefined && raw.id !== id) throw new FaultConfigError('id', `must be left out or equal the id in the path (${JSON.stringify(id)}), got ${describe(raw.id)}`);
  } else {
    if (raw.id === undefined) throw new FaultConfigError('id', 'is required');
    id = validateRuleId(raw.id);
  }
  if (raw.kind === undefined) throw new FaultConfigError('kind', `is required (one of ${FAULT_KINDS.join(', ')})`);
  const kind = oneOf(raw.kind, 'kind', FAULT_KINDS);

  let direction: FaultDirection | undefined;
  if (raw.direction === undefined) {
    if (kind !== 'partition') throw new FaultConfigError('direction', 'is required (inbound or outbound; only a partition may leave it out, for both)');
  } else {
    direction = oneOf(raw.direction, 'direction', ['inbound', 'outbound'] as const);
  }

  const match: FaultMatch = {};
  if (raw.match !== undefined) {
    const m = object(raw.match, 'match');
    onlyKeys(m, ['module', 'route', 'dependency'], 'match', 'a match');
    if (m.module !== undefined) {
      match.module = name(m.module, 'match.module');
      if (options.modules !== undefined && !options.modules.includes(match.module)) {
        throw new FaultConfigError('match.module', `must be one of ${options.modules.join(', ')}, got ${describe(m.module)}`);
      }
    }
    if (m.route !== undefined) {
      parseRoutePattern(m.route);
      match.route = m.route as string;
      if (direction === 'outbound') throw new FaultConfigError('match.route', 'applies to inbound requests only (an outbound rule matches by module and dependency)');
    }
    if (m.dependency !== undefined) {
      match.dependency = name(m.dependency, 'match.dependency');
      if (direction === 'inbound') throw new FaultConfigError('match.dependency', 'applies to outbound calls only (an inbound rule matches by module and route)');
      if (match.route !== undefined) throw new FaultConfigError('match.dependency', 'cannot be combined with match.route: no request is both inbound and outbound');
    }
  }

  let probability = 1;
  if (raw.probability !== undefined) probability = number(raw.probability, 'probability', 0, 1);

  const rule: FaultRule = { id, kind, ...(direction === undefined ? {} : { direction }), match, probability };
  const allowed = KIND_FIELDS[kind];
  for (const key of ['latency', 'status', 'hangMs', 'signal'] as const) {
    if (raw[key] !== undefined && !allowed.includes(key)) {
      throw new FaultConfigError(key, `does not apply to a ${kind} rule${allowed.length === 0 ? '' : ` (it takes ${allowed.join(', ')})`}`);
    }
  }
  if (raw.latency !== undefined) rule.latency = validateLatency(raw.latency);
  else if (kind === 'latency') throw new FaultConfigError('latency', 'is required for a latency rule ({ fixedMs } or { distribution, ... })');
  if (kind === 'error') rule.status = raw.status === undefined ? 503 : errorStatus(raw.status);
  if (raw.hangMs !== undefined) rule.hangMs = number(raw.hangMs, 'hangMs', 1, MAX_HANG_MS, { integer: true });
  if (kind === 'crash') rule.signal = raw.signal === undefined ? 'SIGKILL' : oneOf(raw.signal, 'signal', FAULT_SIGNALS);
  return rule;
}

function errorStatus(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || !(value === 429 || (value >= 500 && value <= 599))) {
    throw new FaultConfigError('status', `must be an HTTP status from 500 to 599, or 429, got ${describe(value)}`);
  }
  return value;
}

/**
 * Validates a whole rule set (`{ seed?, rules: [...] }`): every rule, and ids
 * unique. All or nothing: the first refusal throws, naming the field from the
 * set's root (`rules[2].latency.medianMs`).
 */
export function validateFaultSet(input: unknown, options: ValidateOptions = {}): FaultSet {
  const raw = object(input, '(root)');
  onlyKeys(raw, ['seed', 'rules'], '', 'a fault rule set');
  if (!Array.isArray(raw.rules)) throw new FaultConfigError('rules', `must be an array of rules, got ${describe(raw.rules)}`);
  const seen = new Map<string, number>();
  const rules = raw.rules.map((item: unknown, i: number) => {
    let rule: FaultRule;
    try {
      rule = validateFaultRule(item, options);
    } catch (error) {
      throw error instanceof FaultConfigError ? error.within(`rules[${i}]`) : error;
    }
    const first = seen.get(rule.id);
    if (first !== undefined) throw new FaultConfigError(`rules[${i}].id`, `duplicates rules[${first}].id (${JSON.stringify(rule.id)})`);
    seen.set(rule.id, i);
    return rule;
  });
  return raw.seed === undefined ? { rules } : { seed: validateSeed(raw.seed), rules };
}
