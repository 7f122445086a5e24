/**
 * The compiled route table: host → first path segment → an ordered list of
 * candidates, each with precompiled path and header matchers. Matching a
 * request is two map lookups and a short scan.
 *
 * Precedence among the routes that could match a request: the longest
 * literal path first (an exact path before a prefix or pattern of the same
 * length), then more header matchers, then the more specific host (exact,
 * then `*.` wildcard, then host-less), then configuration order. A host that
 * no route names, while every route names hosts, is unknown (421).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteMatch } from './config.js';

/** A route's matcher, compiled. `T` is what the table returns (the runtime route). */
export interface CompiledMatcher<T> {
  readonly target: T;
  readonly order: number;
  /** Length of the literal part of the path; ranks candidates. */
  readonly weight: number;
  readonly firstSegment: string | undefined;
  matches(method: string, path: string, headers: IncomingHttpHeaders): boolean;
}

function firstSegmentOf(path: string): string {
  const end = path.indexOf('/', 1);
  return end === -1 ? path.slice(1) : path.slice(1, end);
}

/** Compiles one route's `match`. */
export function compileMatcher<T>(match: RouteMatch, target: T, order: number): CompiledMatcher<T> {
  const methods = match.methods === undefined ? undefined : new Set(match.methods);
  const headerEntries = Object.entries(match.headers ?? {});
  let pathTest: (path: string) => boolean = () => true;
  let literal = '';
  /** Literal characters of the whole path (a pattern's parameters left out): what ranks it. */
  let literalLength = 0;
  let exactBonus = 0;
  if (match.pathPrefix !== undefined && match.pathPrefix !== '/') {
    const prefix = match.pathPrefix.endsWith('/') ? match.pathPrefix.slice(0, -1) : match.pathPrefix;
    const withSlash = prefix + '/';
    pathTest = (path) => path === prefix || path.startsWith(withSlash);
    literal = prefix;
    literalLength = prefix.length;
  } else if (match.path !== undefined) {
    const pattern = match.path;
    const star = pattern.endsWith('*');
    const body = star ? pattern.slice(0, -1) : pattern;
    const param = body.indexOf('/:');
    literal = param === -1 ? body : body.slice(0, param);
    literalLength = body.replace(/:[^/]+/g, '').length;
    if (!star && param === -1) {
      pathTest = (path) => path === pattern;
      exactBonus = 0.5;
    } else {
      const source = body
        .split('/')
        .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      const re = new RegExp(`^${source}${star ? '.*' : ''}$`);
      pathTest = (path) => re.test(path);
    }
  }
  return {
    target,
    order,
    weight: literalLength * 1000 + exactBonus * 1000 + Math.min(headerEntries.length, 40) * 10,
    firstSegment: literalIsWholeFirstSegment(match, literal) ? firstSegmentOf(literal) : undefined,
    matches(method, path, headers) {
      if (methods !== undefined && !methods.has(method)) return false;
      if (!pathTest(path)) return false;
      for (const [name, expected] of headerEntries) {
        const actual = headers[name];
        if (actual === undefined) return false;
        if (expected !== true && (Array.isArray(actual) ? !actual.includes(expected) : actual !== expected)) return false;
      }
      return true;
    },
  };
}

/**
 * True when every path the matcher accepts has `firstSegmentOf(literal)` as
 * its whole first segment (so bucketing by first segment is safe).
 */
function literalIsWholeFirstSegment(match: RouteMatch, literal: string): boolean {
  if (literal.length <= 1) return false;
  if (literal.indexOf('/', 1) !== -1) return true; // the first segment is complete
  if (match.pathPrefix !== undefined) return true; // prefix on a segment boundary
  // a pattern: `/orders` exact, `/orders/:id`, `/orders/*`; but `/ord*` continues the segment
  const pattern = match.path ?? '';
  const next = pattern.charAt(literal.length);
  return next === '' || next === '/';
}

interface HostEntry<T> {
  bySegment: Map<string, CompiledMatcher<T>[]>;
  generic: CompiledMatcher<T>[];
}

function rank<T>(a: CompiledMatcher<T>, b: CompiledMatcher<T>): number {
  return b.weight - a.weight || a.order - b.order;
}

function buildEntry<T>(matchers: CompiledMatcher<T>[]): HostEntry<T> {
  const generic = matchers.filter((m) => m.firstSegment === undefined).sort(rank);
  const bySegment = new Map<string, CompiledMatcher<T>[]>();
  for (const m of matchers) {
    if (m.firstSegment === undefined) continue;
    let list = bySegment.get(m.firstSegment);
    if (list === undefined) bySegment.set(m.firstSegment, (list = []));
    list.push(m);
  }
  for (const [segment, list] of bySegment) bySegment.set(segment, [...list, ...generic].sort(rank));
  return { bySegment, generic };
}

/** Result of a lookup: the route, or why none matched. */
export type MatchResult<T> = { route: T } | { route: undefined; reason: 'unknown-host' | 'no-route' };

export class RouteTable<T> {
  private readonly exact = new Map<string, HostEntry<T>>();
  private readonly wildcards: { suffix: string; entry: HostEntry<T> }[] = [];
  private readonly any: HostEntry<T> | undefined;
  private readonly hostCache = new Map<string, HostEntry<T> | null>();

  constructor(routes: readonly { match: RouteMatch; target: T }[]) {
    const compiled = routes.map((r, i) => ({ matcher: compileMatcher(r.match, r.target, i), hosts: r.match.hosts }));
    const hostless = compiled.filter((c) => c.hosts === undefined).map((c) => c.matcher);
    const exactHosts = new Set<string>();
    const wildcardHosts = new Set<string>();
    for (const c of compiled) for (const h of c.hosts ?? []) (h.startsWith('*.') ? wildcardHosts : exactHosts).add(h);
    const forHost = (host: string): CompiledMatcher<T>[] =>
      compiled.filter((c) => c.hosts !== undefined && c.hosts.some((h) => h === host || (h.startsWith('*.') && host.endsWith(h.slice(1))))).map((c) => c.matcher);
    // Host-specific routes outrank wildcard ones, which outrank host-less ones, whatever their paths.
    const tiered = (host: string): CompiledMatcher<T>[] => {
      const own = compiled.filter((c) => c.hosts?.includes(host) === true).map((c) => ({ ...c.matcher, weight: c.matcher.weight + 2 }));
      const wild = forHost(host).filter((m) => !own.some((o) => o.order === m.order)).map((m) => ({ ...m, weight: m.weight + 1 }));
      return [...own, ...wild, ...hostless];
    };
    for (const host of exactHosts) this.exact.set(host, buildEntry(tiered(host)));
    for (const w of wildcardHosts) {
      const suffix = w.slice(1);
      const wild = compiled.filter((c) => c.hosts?.includes(w) === true).map((c) => ({ ...c.matcher, weight: c.matcher.weight + 1 }));
      this.wildcards.push({ suffix, entry: buildEntry([...wild, ...hostless]) });
    }
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.any = hostless.length > 0 ? buildEntry(hostless) : undefined;
  }

  private entryFor(host: string): HostEntry<T> | undefined {
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    if (this.wildcards.length === 0) return this.any;
    const cached = this.hostCache.get(host);
    if (cached !== undefined) return cached ?? undefined;
    let found: HostEntry<T> | undefined;
    for (const w of this.wildcards) {
      if (host.endsWith(w.suffix) && host.length > w.suffix.length) {
        found = w.entry;
        break;
      }
    }
    found ??= this.any;
    if (this.hostCache.size >= 4_096) this.hostCache.clear();
    this.hostCache.set(host, found ?? null);
    return found;
  }

  /** The route for a request (host lowercase without port, path without query). */
  match(host: string, method: string, path: string, headers: IncomingHttpHeaders): MatchResult<T> {
    const entry = this.entryFor(host);
    if (entry === undefined) return { route: undefined, reason: 'unknown-host' };
    const list = entry.bySegment.size === 0 ? entry.generic : (entry.bySegment.get(firstSegmentOf(path)) ?? entry.generic);
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      if (m.matches(method, path, headers)) return { route: m.target };
    }
    return { route: undefined, reason: 'no-route' };
  }
}
