/**
 * The gateway's configuration: a JSON document, validated as a whole before
 * anything is built. Every problem is reported with its path, naming the route
 * and the field (`routes[2] (payments).upstream: unknown upstream "paymnts"`),
 * and all problems are reported at once.
 */
import { readFile } from 'node:fs/promises';
import { rateLimitRule, type RateLimitRule, type RateLimitRuleInput } from '@bulwark/resilience';

/** A configuration that does not validate; `issues` lists every problem, one per line of the message. */
export class GatewayConfigError extends Error {
  readonly code = 'BULWARK_GATEWAY_INVALID_CONFIG';
  constructor(readonly issues: readonly string[]) {
    super(`invalid gateway configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'GatewayConfigError';
  }
}

/** An upstream service as configured: instances and whatever the upstream layer reads (balancer, health checks, ...). */
export interface UpstreamConfig {
  /** Static instances: origins (`http://host:port`) or `{ url, weight?, metadata? }`. */
  instances?: readonly (string | { url: string; weight?: number; metadata?: Record<string, string> })[];
  /** Balancer name, read by the upstream layer (`round-robin`, `least-outstanding`, `p2c`). */
  balancer?: string;
  /** Connections per instance (the gateway's keep-alive pool). Default 128. */
  connections?: number;
  /** Longest upstream response header section, bytes. Default 16 KiB. */
  maxHeaderSize?: number;
  /** Everything else goes to the upstream layer as is (health checks, ejection, discovery). */
  [option: string]: unknown;
}

export interface RouteMatch {
  /** Exact host names (`api.shop.local`) or one leading wildcard label (`*.shop.local`). Absent: any host. */
  hosts?: readonly string[];
  /** Path prefix on a segment boundary (`/orders` matches `/orders`, `/orders/1`, not `/ordersx`). */
  pathPrefix?: string;
  /** Path pattern: `/orders/:id`, `/files/*` (a trailing `*` matches the rest). Exclusive with `pathPrefix`. */
  path?: string;
  /** Allowed methods (uppercase). Absent: any. */
  methods?: readonly string[];
  /** Header name (lowercase) to exact value, or `true` for "present". All must match. */
  headers?: Readonly<Record<string, string | true>>;
}

export interface RouteRewrite {
  /** Removes this prefix from the path (must be a prefix of every matched path: the route's `pathPrefix`). */
  stripPrefix?: string;
  /** Prepended after stripping. */
  addPrefix?: string;
}

export interface RetryConfig {
  /** Attempts in all (1 = no retry). Default 2. */
  maxAttempts?: number;
  /** The route's retry budget. Defaults: ratio 0.1, minRetriesPerSecond 10. */
  budget?: { ratio?: number; minRetriesPerSecond?: number; windowMs?: number };
  /** Wait before a retry, ms. Default 0 (the retry goes to another instance at once). */
  backoffMs?: number;
}

export interface BreakerConfig {
  failureRateThreshold?: number;
  minimumCalls?: number;
  /** Count window size. Default 100. */
  windowSize?: number;
  openDurationMs?: number;
  halfOpenCalls?: number;
  slowCallDurationMs?: number;
}

export type RateLimitKey = 'sub' | 'ip' | `header:${string}`;

export type RateLimitConfig = RateLimitRuleInput & {
  /** Who the allowance is per: `sub` (the JWT subject, else the IP), `ip`, or `header:<name>`. Default `sub`. */
  key?: RateLimitKey;
  /** `memory` (default) or `redis` (the gateway's `redis` option). */
  store?: 'memory' | 'redis';
  /** On store failure: `open` (default: the request proceeds) or `closed` (503). */
  onStoreError?: 'open' | 'closed';
  /** `RateLimit-*` headers on allowed responses. Default true. */
  headers?: boolean;
};

export interface AuthRequirement {
  /** Every one of these scopes is required. */
  scopes?: readonly string[];
  /** At least one of these roles is required. */
  roles?: readonly string[];
}

export interface CanaryConfig {
  /** The canary upstream. */
  upstream: string;
  /** Percent of traffic (0-100) sent to the canary. */
  weight: number;
  /** Header that forces the choice: `true` → canary, `false` → stable. Default `x-canary`; `false` turns it off. */
  header?: string | false;
  /**
   * What keeps a client on one side: `sub` (JWT subject), `header:<name>` or `cookie:<name>`.
   * The same key always lands on the same side for a given weight. Absent: each request is drawn.
   */
  sticky?: 'sub' | `header:${string}` | `cookie:${string}`;
}

export interface RouteConfig {
  /** Unique name (admin, metrics, rate-limit buckets). Default `route-<index>`. */
  name?: string;
  match: RouteMatch;
  upstream: string;
  canary?: CanaryConfig;
  rewrite?: RouteRewrite;
  /** Deadline of the whole exchange up to the response head, retries included, ms. Default 30 000. */
  timeoutMs?: number;
  /** Longest silence while a body streams, ms. Default 60 000. */
  idleTimeoutMs?: number;
  retry?: RetryConfig | false;
  breaker?: BreakerConfig | false;
  rateLimit?: RateLimitConfig;
  /** `true`: any valid token. An object: scopes and roles too. Absent or `false`: no auth. */
  auth?: boolean | AuthRequirement;
  /** Forward the client's Host (default) or the instance's. */
  preserveHost?: boolean;
  /** Longest response body forwarded, bytes. Default: the gateway's `limits.maxResponseBytes`. */
  maxResponseBytes?: number;
  /** Shuffle sharding: the tenant of a request, `sub` (JWT subject) or `header:<name>`; the upstream serves it from its shard. */
  tenant?: 'sub' | `header:${string}`;
}

export interface GatewayConfig {
  listen?: { port?: number; host?: string };
  admin?: { port?: number; host?: string; scope?: string };
  limits?: {
    maxHeaderSize?: number;
    maxResponseBytes?: number;
    requestTimeoutMs?: number;
    headersTimeoutMs?: number;
    keepAliveTimeoutMs?: number;
  };
  /** Trust X-Forwarded-* / Forwarded from clients (append to them) instead of replacing them. Default false. */
  trustForwarded?: boolean;
  auth?: {
    issuers: readonly { issuer: string; audience: string | readonly string[]; jwksUri?: string; jwks?: unknown; algorithms?: readonly string[] }[];
    clockSkewSec?: number;
    /** Verified tokens kept (LRU). Default 10 000. */
    cacheSize?: number;
  };
  upstreams: Readonly<Record<string, UpstreamConfig>>;
  routes: readonly RouteConfig[];
}

/** A validated route, with defaults filled in. */
export interface ValidRoute extends RouteConfig {
  name: string;
  timeoutMs: number;
  idleTimeoutMs: number;
  rule: RateLimitRule | undefined;
}

export interface ValidConfig {
  raw: GatewayConfig;
  routes: ValidRoute[];
}

type Issues = string[];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const HOST_NAME = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']);

function checkKeys(where: string, value: Record<string, unknown>, allowed: readonly string[], issues: Issues): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) issues.push(`${where}.${key}: unknown field`);
}

function optionalPosInt(where: string, value: unknown, issues: Issues): void {
  if (value !== undefined && !isPosInt(value)) issues.push(`${where}: must be a positive integer, got ${JSON.stringify(value)}`);
}

/** Validates `raw`; throws `GatewayConfigError` listing every problem. */
export function validateConfig(raw: unknown): ValidConfig {
  const issues: Issues = [];
  if (!isObject(raw)) throw new GatewayConfigError(['(root): must be an object']);
  checkKeys('(root)', raw, ['listen', 'admin', 'limits', 'trustForwarded', 'auth', 'upstreams', 'routes', '$schema', 'comment'], issues);
  const upstreams = raw.upstreams;
  if (!isObject(upstreams) || Object.keys(upstreams).length === 0) issues.push('upstreams: must be an object with at least one upstream');
  else {
    for (const [name, up] of Object.entries(upstreams)) {
      const where = `upstreams.${name}`;
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) issues.push(`${where}: name must be 1-64 of A-Z a-z 0-9 _ . -`);
      if (!isObject(up)) {
        issues.push(`${where}: must be an object`);
        continue;
      }
      if (up.instances !== undefined) {
        if (!Array.isArray(up.instances)) issues.push(`${where}.instances: must be an array`);
        else
          up.instances.forEach((inst: unknown, i) => {
            const url = typeof inst === 'string' ? inst : isObject(inst) ? inst.url : undefined;
            if (typeof url !== 'string' || !/^https?:\/\/[^/?#]+$/.test(url)) issues.push(`${where}.instances[${i}]: must be an origin like http://127.0.0.1:3001 (no path), got ${JSON.stringify(url ?? inst)}`);
            if (isObject(inst) && inst.weight !== undefined && !(typeof inst.weight === 'number' && inst.weight > 0)) issues.push(`${where}.instances[${i}].weight: must be a positive number`);
          });
      }
      optionalPosInt(`${where}.connections`, up.connections, issues);
      optionalPosInt(`${where}.maxHeaderSize`, up.maxHeaderSize, issues);
    }
  }
  const upstreamNames = new Set(isObject(upstreams) ? Object.keys(upstreams) : []);

  if (raw.listen !== undefined) {
    if (!isObject(raw.listen)) issues.push('listen: must be an object');
    else {
      checkKeys('listen', raw.listen, ['port', 'host'], issues);
      if (raw.listen.port !== undefined && !(Number.isInteger(raw.listen.port) && (raw.listen.port as number) >= 0 && (raw.listen.port as number) < 65536)) issues.push('listen.port: must be 0-65535');
    }
  }
  if (raw.admin !== undefined) {
    if (!isObject(raw.admin)) issues.push('admin: must be an object');
    else {
      checkKeys('admin', raw.admin, ['port', 'host', 'scope'], issues);
      if (raw.admin.scope !== undefined && (typeof raw.admin.scope !== 'string' || raw.admin.scope === '')) issues.push('admin.scope: must be a non-empty string');
      if (raw.auth === undefined) issues.push('admin: the admin listener requires auth.issuers (it is authenticated with a JWT scope)');
    }
  }
  if (raw.limits !== undefined) {
    if (!isObject(raw.limits)) issues.push('limits: must be an object');
    else {
      checkKeys('limits', raw.limits, ['maxHeaderSize', 'maxResponseBytes', 'requestTimeoutMs', 'headersTimeoutMs', 'keepAliveTimeoutMs'], issues);
      for (const key of Object.keys(raw.limits)) optionalPosInt(`limits.${key}`, raw.limits[key], issues);
    }
  }
  if (raw.trustForwarded !== undefined && typeof raw.trustForwarded !== 'boolean') issues.push('trustForwarded: must be a boolean');
  if (raw.auth !== undefined) {
    if (!isObject(raw.auth)) issues.push('auth: must be an object');
    else {
      checkKeys('auth', raw.auth, ['issuers', 'clockSkewSec', 'cacheSize'], issues);
      if (!Array.isArray(raw.auth.issuers) || raw.auth.issuers.length === 0) issues.push('auth.issuers: must be a non-empty array');
      optionalPosInt('auth.cacheSize', raw.auth.cacheSize, issues);
    }
  }

  const routes: ValidRoute[] = [];
  if (!Array.isArray(raw.routes) || raw.routes.length === 0) issues.push('routes: must be a non-empty array');
  else {
    const names = new Set<string>();
    raw.routes.forEach((route: unknown, i) => {
      const v = validateRoute(route, i, upstreamNames, raw.auth !== undefined, issues);
      if (v === undefined) return;
      if (names.has(v.name)) issues.push(`routes[${i}] (${v.name}).name: duplicate route name`);
      names.add(v.name);
      routes.push(v);
    });
  }
  if (issues.length > 0) throw new GatewayConfigError(issues);
  return { raw: raw as unknown as GatewayConfig, routes };
}

function validateRoute(route: unknown, i: number, upstreams: ReadonlySet<string>, hasAuth: boolean, issues: Issues): ValidRoute | undefined {
  if (!isObject(route)) {
    issues.push(`routes[${i}]: must be an object`);
    return undefined;
  }
  const name = typeof route.name === 'string' && route.name !== '' ? route.name : `route-${i}`;
  const w = `routes[${i}] (${name})`;
  const before = issues.length;
  if (route.name !== undefined && (typeof route.name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(route.name))) issues.push(`${w}.name: must be 1-64 of A-Z a-z 0-9 _ . : -`);
  checkKeys(w, route, ['name', 'match', 'upstream', 'canary', 'rewrite', 'timeoutMs', 'idleTimeoutMs', 'retry', 'breaker', 'rateLimit', 'auth', 'preserveHost', 'maxResponseBytes', 'tenant'], issues);
  if (typeof route.upstream !== 'string') issues.push(`${w}.upstream: required, the name of an upstream`);
  else if (!upstreams.has(route.upstream)) issues.push(`${w}.upstream: unknown upstream ${JSON.stringify(route.upstream)}`);

  const match = route.match;
  if (!isObject(match)) issues.push(`${w}.match: required, an object`);
  else {
    checkKeys(`${w}.match`, match, ['hosts', 'pathPrefix', 'path', 'methods', 'headers'], issues);
    if (match.hosts !== undefined) {
      if (!Array.isArray(match.hosts) || match.hosts.length === 0) issues.push(`${w}.match.hosts: must be a non-empty array`);
      else match.hosts.forEach((h: unknown, j) => typeof h === 'string' && HOST_NAME.test(h) ? undefined : issues.push(`${w}.match.hosts[${j}]: not a lowercase host name (optionally *.): ${JSON.stringify(h)}`));
    }
    if (match.pathPrefix !== undefined && match.path !== undefined) issues.push(`${w}.match: give pathPrefix or path, not both`);
    if (match.pathPrefix !== undefined && (typeof match.pathPrefix !== 'string' || !match.pathPrefix.startsWith('/') || /[?#\s]/.test(match.pathPrefix))) issues.push(`${w}.match.pathPrefix: must start with / and hold no ?, # or spaces`);
    if (match.path !== undefined && (typeof match.path !== 'string' || !match.path.startsWith('/') || /[?#\s]/.test(match.path) || /\*./.test(match.path))) issues.push(`${w}.match.path: must start with /, hold no ?, # or spaces, and * only at the end`);
    if (match.methods !== undefined) {
      if (!Array.isArray(match.methods) || match.methods.length === 0) issues.push(`${w}.match.methods: must be a non-empty array`);
      else match.methods.forEach((m: unknown, j) => (typeof m === 'string' && METHODS.has(m) ? undefined : issues.push(`${w}.match.methods[${j}]: unknown method ${JSON.stringify(m)}`)));
    }
    if (match.headers !== undefined) {
      if (!isObject(match.headers)) issues.push(`${w}.match.headers: must be an object`);
      else
        for (const [h, v] of Object.entries(match.headers)) {
          if (!HEADER_NAME.test(h)) issues.push(`${w}.match.headers.${h}: header names must be lowercase tokens`);
          if (typeof v !== 'string' && v !== true) issues.push(`${w}.match.headers.${h}: must be a string or true`);
        }
    }
  }
  if (route.canary !== undefined) {
    const c = route.canary;
    if (!isObject(c)) issues.push(`${w}.canary: must be an object`);
    else {
      checkKeys(`${w}.canary`, c, ['upstream', 'weight', 'header', 'sticky'], issues);
      if (typeof c.upstream !== 'string' || !upstreams.has(c.upstream)) issues.push(`${w}.canary.upstream: unknown upstream ${JSON.stringify(c.upstream)}`);
      if (typeof c.weight !== 'number' || !(c.weight >= 0 && c.weight <= 100)) issues.push(`${w}.canary.weight: must be a number from 0 to 100`);
      if (c.header !== undefined && c.header !== false && (typeof c.header !== 'string' || !HEADER_NAME.test(c.header))) issues.push(`${w}.canary.header: must be a lowercase header name or false`);
      if (c.sticky !== undefined && (typeof c.sticky !== 'string' || !/^(sub|header:[!#$%&'*+\-.^_`|~0-9a-z]+|cookie:[^\s;=]+)$/.test(c.sticky))) issues.push(`${w}.canary.sticky: must be "sub", "header:<name>" or "cookie:<name>"`);
    }
  }
  if (route.rewrite !== undefined) {
    const r = route.rewrite;
    if (!isObject(r)) issues.push(`${w}.rewrite: must be an object`);
    else {
      checkKeys(`${w}.rewrite`, r, ['stripPrefix', 'addPrefix'], issues);
      if (r.stripPrefix !== undefined) {
        const prefix = isObject(match) ? match.pathPrefix : undefined;
        if (typeof r.stripPrefix !== 'string' || !r.stripPrefix.startsWith('/')) issues.push(`${w}.rewrite.stripPrefix: must start with /`);
        else if (typeof prefix !== 'string' || !prefix.startsWith(r.stripPrefix)) issues.push(`${w}.rewrite.stripPrefix: must be a prefix of match.pathPrefix`);
      }
      if (r.addPrefix !== undefined && (typeof r.addPrefix !== 'string' || !r.addPrefix.startsWith('/') || r.addPrefix.endsWith('/'))) issues.push(`${w}.rewrite.addPrefix: must start with / and not end with /`);
      // it goes into the forwarded request line as is: visible ASCII only, no query or fragment
      else if (r.addPrefix !== undefined && !/^\/[!-~]*$/.test(r.addPrefix)) issues.push(`${w}.rewrite.addPrefix: must hold visible ASCII characters only`);
      else if (r.addPrefix !== undefined && /[?#]/.test(r.addPrefix)) issues.push(`${w}.rewrite.addPrefix: must not hold ? or #`);
    }
  }
  optionalPosInt(`${w}.timeoutMs`, route.timeoutMs, issues);
  optionalPosInt(`${w}.idleTimeoutMs`, route.idleTimeoutMs, issues);
  optionalPosInt(`${w}.maxResponseBytes`, route.maxResponseBytes, issues);
  if (route.tenant !== undefined && (typeof route.tenant !== 'string' || !/^(sub|header:[!#$%&'*+\-.^_`|~0-9a-z]+)$/.test(route.tenant))) issues.push(`${w}.tenant: must be "sub" or "header:<name>"`);
  if (route.preserveHost !== undefined && typeof route.preserveHost !== 'boolean') issues.push(`${w}.preserveHost: must be a boolean`);
  if (route.retry !== undefined && route.retry !== false) {
    const r = route.retry;
    if (!isObject(r)) issues.push(`${w}.retry: must be an object or false`);
    else {
      checkKeys(`${w}.retry`, r, ['maxAttempts', 'budget', 'backoffMs'], issues);
      if (r.maxAttempts !== undefined && !(isPosInt(r.maxAttempts) && r.maxAttempts <= 10)) issues.push(`${w}.retry.maxAttempts: must be an integer from 1 to 10`);
      if (r.backoffMs !== undefined && !(typeof r.backoffMs === 'number' && r.backoffMs >= 0)) issues.push(`${w}.retry.backoffMs: must be a number >= 0`);
      if (r.budget !== undefined) {
        if (!isObject(r.budget)) issues.push(`${w}.retry.budget: must be an object`);
        else {
          checkKeys(`${w}.retry.budget`, r.budget, ['ratio', 'minRetriesPerSecond', 'windowMs'], issues);
          if (r.budget.ratio !== undefined && !(typeof r.budget.ratio === 'number' && r.budget.ratio >= 0 && r.budget.ratio <= 1)) issues.push(`${w}.retry.budget.ratio: must be a number from 0 to 1`);
        }
      }
    }
  }
  if (route.breaker !== undefined && route.breaker !== false) {
    const b = route.breaker;
    if (!isObject(b)) issues.push(`${w}.breaker: must be an object or false`);
    else {
      checkKeys(`${w}.breaker`, b, ['failureRateThreshold', 'minimumCalls', 'windowSize', 'openDurationMs', 'halfOpenCalls', 'slowCallDurationMs'], issues);
      if (b.failureRateThreshold !== undefined && !(typeof b.failureRateThreshold === 'number' && b.failureRateThreshold > 0 && b.failureRateThreshold <= 100)) issues.push(`${w}.breaker.failureRateThreshold: must be a percentage in (0, 100]`);
      for (const key of ['minimumCalls', 'windowSize', 'openDurationMs', 'halfOpenCalls', 'slowCallDurationMs']) optionalPosInt(`${w}.breaker.${key}`, b[key], issues);
    }
  }
  let rule: RateLimitRule | undefined;
  if (route.rateLimit !== undefined) {
    const rl = route.rateLimit;
    if (!isObject(rl)) issues.push(`${w}.rateLimit: must be an object`);
    else {
      const { key, store, onStoreError, headers, ...ruleInput } = rl;
      if (key !== undefined && (typeof key !== 'string' || !/^(sub|ip|header:[!#$%&'*+\-.^_`|~0-9a-z]+)$/.test(key))) issues.push(`${w}.rateLimit.key: must be "sub", "ip" or "header:<name>"`);
      if (store !== undefined && store !== 'memory' && store !== 'redis') issues.push(`${w}.rateLimit.store: must be "memory" or "redis"`);
      if (onStoreError !== undefined && onStoreError !== 'open' && onStoreError !== 'closed') issues.push(`${w}.rateLimit.onStoreError: must be "open" or "closed"`);
      if (headers !== undefined && typeof headers !== 'boolean') issues.push(`${w}.rateLimit.headers: must be a boolean`);
      try {
        rule = rateLimitRule(ruleInput as unknown as RateLimitRuleInput);
      } catch (error) {
        issues.push(`${w}.rateLimit: ${(error as Error).message}`);
      }
    }
  }
  if (route.auth !== undefined && route.auth !== false) {
    if (!hasAuth) issues.push(`${w}.auth: requires the top-level auth.issuers`);
    if (route.auth !== true) {
      const a = route.auth;
      if (!isObject(a)) issues.push(`${w}.auth: must be true, false or { scopes, roles }`);
      else {
        checkKeys(`${w}.auth`, a, ['scopes', 'roles'], issues);
        for (const key of ['scopes', 'roles'] as const) {
          const list = a[key];
          if (list !== undefined && !(Array.isArray(list) && list.every((s) => typeof s === 'string' && s !== ''))) issues.push(`${w}.auth.${key}: must be an array of non-empty strings`);
        }
      }
    }
  }
  if (issues.length > before) return { ...(route as unknown as RouteConfig), name, timeoutMs: 0, idleTimeoutMs: 0, rule };
  return {
    ...(route as unknown as RouteConfig),
    name,
    timeoutMs: (route.timeoutMs as number | undefined) ?? 30_000,
    idleTimeoutMs: (route.idleTimeoutMs as number | undefined) ?? 60_000,
    rule,
  };
}

/** Reads and validates a JSON configuration file. */
export async function loadConfigFile(path: string): Promise<ValidConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new GatewayConfigError([`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new GatewayConfigError([`${path}: not valid JSON (${(error as Error).message})`]);
  }
  return validateConfig(raw);
}
