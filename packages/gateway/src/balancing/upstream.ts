/**
 * One upstream service: its instances (from discovery), their health (active
 * checks and passive outlier ejection), and the balancer that picks one per
 * attempt. Implements the `UpstreamService` contract of `types.ts`.
 *
 * Hot path: `pick` and `Lease.done` run on every proxied attempt. They touch
 * no timer, allocate one small lease object, and loop over the (small)
 * instance array without building intermediate arrays. Everything that costs
 * more (shard computation, ejection timers, health checks, discovery) happens
 * on membership changes, on ejections, or off the request path.
 */
import { systemClock, type Clock, type Timer } from '@bulwark/resilience';
import { request } from 'undici';
import { staticDiscovery } from '../discovery/static.js';
import type { DiscoverySource, StaticInstance } from '../discovery/types.js';
import { pairHash } from './hash.js';
import type { AttemptOutcome, Instance, InstanceStatus, Lease, PickContext, UpstreamService } from './types.js';

export type BalancerKind = 'round-robin' | 'least-outstanding' | 'p2c';

/** Passive outlier ejection: an instance that keeps failing is taken out for a while. */
export interface OutlierEjectionOptions {
  /** Consecutive failed attempts that eject an instance. Default 5. */
  consecutiveErrors?: number;
  /** Whether a 5xx counts as a failure (`true`, default), or only gateway errors (connect/reset/timeout) do. */
  countServerErrors?: boolean;
  /** Ejection time for the first ejection; the n-th ejection lasts n × this, up to `maxEjectionMs`. Default 30 000. */
  baseEjectionMs?: number;
  /** Longest ejection. Default 300 000. */
  maxEjectionMs?: number;
  /**
   * Never eject more than this percentage of the instances at once (rounded
   * down: 50 % of 3 is 1). An instance that reaches the failure count while
   * the budget is spent stays in rotation (and is ejected on its next failure
   * once the budget allows). Default 50.
   */
  maxEjectionPercent?: number;
}

/** Active health checks. */
export interface HealthCheckOptions {
  /** Path of the HTTP GET check. Default `/health`. A 2xx answer passes. */
  path?: string;
  /** Time between the end of one round of checks and the start of the next. Default 5 000. */
  intervalMs?: number;
  /** A check that takes longer fails. Default 1 000. */
  timeoutMs?: number;
  /** Consecutive passes that make an unhealthy instance healthy. Default 2. */
  healthyThreshold?: number;
  /** Consecutive failures that make a healthy instance unhealthy. Default 3. */
  unhealthyThreshold?: number;
  /** Replaces the HTTP check (resolve `true` to pass). The signal aborts at `timeoutMs`. */
  check?: (instance: Instance, signal: AbortSignal) => Promise<boolean>;
}

/** Something that happened to the upstream, for logs and metrics. */
export type UpstreamEvent =
  | { readonly type: 'instances'; readonly service: string; readonly ids: readonly string[] }
  | { readonly type: 'ejected'; readonly service: string; readonly id: string; readonly ejections: number; readonly durationMs: number }
  | { readonly type: 'returned'; readonly service: string; readonly id: string }
  | { readonly type: 'ejection-refused'; readonly service: string; readonly id: string; readonly ejected: number; readonly allowed: number }
  | { readonly type: 'health'; readonly service: string; readonly id: string; readonly health: 'healthy' | 'unhealthy' };

export interface UpstreamOptions {
  /** The service's name (reported in `UpstreamService.name` and events). */
  name: string;
  /** Static instances (URLs, or `{ url, id?, weight?, metadata? }`). Give this or `discovery`. */
  instances?: readonly StaticInstance[];
  /** A discovery source (e.g. `registryDiscovery(...)`). Give this or `instances`. */
  discovery?: DiscoverySource;
  /** Default `round-robin` (weighted, smooth). */
  balancer?: BalancerKind;
  /** Active health checks; off unless given. */
  healthCheck?: HealthCheckOptions | false;
  /** Passive outlier ejection; on by default with the defaults of `OutlierEjectionOptions`; `false` turns it off. */
  outlierEjection?: OutlierEjectionOptions | false;
  /**
   * Shuffle sharding: a request with a `tenant` is served by a fixed subset of
   * this many instances, chosen by hashing the tenant with each instance id
   * (rendezvous hashing: a uniformly random-looking subset per tenant, stable
   * when unrelated instances come and go). Off (every instance) unless given.
   */
  shardSize?: number;
  /**
   * When none of a tenant's shard is available (all ejected or unhealthy):
   * `pool` (default) serves the tenant from the other instances, trading
   * isolation for availability; `none` answers no instance (the proxy's 503).
   */
  shardFallback?: 'pool' | 'none';
  /** Weight of the newest attempt latency in the EWMA, in (0, 1]. Default 0.3. */
  latencyEwmaAlpha?: number;
  /** Time for ejections, health-check intervals and timeouts. Default `systemClock`. */
  clock?: Clock;
  /** Randomness for P2C, in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** Called synchronously on ejections, health changes and membership changes. Must not throw. */
  onEvent?: (event: UpstreamEvent) => void;
  /** Errors from discovery and event listeners. Default: `process.emitWarning`. */
  onError?: (error: unknown) => void;
}

/** An `UpstreamService` with the extras an operator or a test needs. */
export interface Upstream extends UpstreamService {
  /** Settles once discovery delivered its first list and (with health checks) the first round of checks ran. */
  ready(): Promise<void>;
  /** Runs one round of active health checks now (joins the round in flight, if any). */
  checkHealth(): Promise<void>;
  /** The ids of the instances in `tenant`'s shard (every instance without `shardSize`). */
  shardOf(tenant: string): string[];
  /** The current instances. */
  instances(): readonly Instance[];
}

const MAX_SHARD_CACHE = 10_000;

/** Per-instance state. Mutable, owned by one upstream. */
class Slot {
  outstanding = 0;
  /** < 0: no attempt finished yet. */
  ewma = -1;
  health: 'healthy' | 'unhealthy' | 'unknown' = 'unknown';
  checkPasses = 0;
  checkFailures = 0;
  consecutiveFailures = 0;
  ejections = 0;
  ejected = false;
  /** Clock time (monotonic) when the current ejection ends. */
  ejectedUntil = 0;
  returnedAt = Number.NEGATIVE_INFINITY;
  ejectTimer: Timer | undefined = undefined;
  /** Not ejected and not unhealthy. Kept up to date so `pick` reads one field. */
  available = true;
  /** Smooth weighted round-robin's running weight. */
  current = 0;
  removed = false;
  refusalReported = false;

  constructor(public instance: Instance) {}

  refresh(): void {
    this.available = !this.ejected && this.health !== 'unhealthy';
  }
}

class SlotLease implements Lease {
  readonly instance: Instance;
  private finished = false;

  constructor(
    private readonly slot: Slot,
    private readonly owner: UpstreamImpl,
  ) {
    this.instance = slot.instance;
  }

  done(outcome: AttemptOutcome, latencyMs: number): void {
    if (this.finished) return;
    this.finished = true;
    this.owner.report(this.slot, outcome, latencyMs);
  }
}

interface ResolvedOutlier {
  consecutiveErrors: number;
  countServerErrors: boolean;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionPercent: number;
}

interface ResolvedHealth {
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  check: (instance: Instance, signal: AbortSignal) => Promise<boolean>;
}

class UpstreamImpl implements Upstream {
  private slots: Slot[] = [];
  private readonly shards = new Map<string, Slot[]>();
  private ejectedCount = 0;
  private cursor = 0;
  private closed = false;
  private healthTimer: Timer | undefined;
  private healthRound: Promise<void> | undefined;
  private readonly started: Promise<void>;
  private readonly choose: (list: readonly Slot[], exclude: ReadonlySet<string> | undefined) => Slot | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly alpha: number;
  private readonly outlier: ResolvedOutlier | undefined;
  private readonly health: ResolvedHealth | undefined;
  private readonly shardSize: number | undefined;
  private readonly shardFallback: boolean;
  private readonly discovery: DiscoverySource;
  private readonly onEvent: ((event: UpstreamEvent) => void) | undefined;
  private readonly onError: (error: unknown) => void;

  constructor(
    readonly name: string,
    options: UpstreamOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.alpha = options.latencyEwmaAlpha ?? 0.3;
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new TypeError(`upstream "${name}": latencyEwmaAlpha must be in (0, 1], got ${String(this.alpha)}`);
    this.outlier = resolveOutlier(name, options.outlierEjection);
    this.health = resolveHealth(name, options.healthCheck);
    if (options.shardSize !== undefined) positiveInt(name, 'shardSize', options.shardSize);
    this.shardSize = options.shardSize;
    const fallback = options.shardFallback ?? 'pool';
    if (fallback !== 'pool' && fallback !== 'none') throw new TypeError(`upstream "${name}": shardFallback must be "pool" or "none"`);
    this.shardFallback = fallback === 'pool';
    const balancer = options.balancer ?? 'round-robin';
    switch (balancer) {
      case 'round-robin':
        this.choose = roundRobin;
        break;
      case 'least-outstanding':
        this.choose = (list, exclude) => this.leastOutstanding(list, exclude);
        break;
      case 'p2c':
        this.choose = (list, exclude) => this.powerOfTwo(list, exclude);
        break;
      default:
        throw new TypeError(`upstream "${name}": unknown balancer ${JSON.stringify(balancer)}`);
    }
    if ((options.instances === undefined) === (options.discovery === undefined)) {
      throw new TypeError(`upstream "${name}": give exactly one of instances and discovery`);
    }
    this.discovery = options.discovery ?? staticDiscovery(options.instances ?? []);
    this.onEvent = options.onEvent;
    this.onError = options.onError ?? ((error) => process.emitWarning(`bulwark gateway upstream "${name}": ${String(error)}`));
    this.started = this.start();
    // Failures reach onError; ready() still rejects for whoever waits on it.
    this.started.catch((error: unknown) => this.onError(error));
  }

  private async start(): Promise<void> {
    await this.discovery.start(
      (instances) => this.setInstances(instances),
      (error) => this.onError(error),
    );
    if (this.health !== undefined && !this.closed) {
      await this.checkHealth();
      this.scheduleHealth();
    }
  }

  ready(): Promise<void> {
    return this.started;
  }

  // ---- the hot path ---------------------------------------------------------

  pick(ctx?: PickContext): Lease | undefined {
    const all = this.slots;
    if (all.length === 0) return undefined;
    let exclude = ctx?.exclude;
    if (exclude !== undefined && exclude.size === 0) exclude = undefined;
    let list = all;
    const tenant = ctx?.tenant;
    if (tenant !== undefined && this.shardSize !== undefined && this.shardSize < all.length) list = this.shard(tenant);
    let slot = this.choose(list, exclude);
    if (slot === undefined && exclude !== undefined) slot = this.choose(list, undefined);
    if (slot === undefined && list !== all && this.shardFallback) {
      slot = this.choose(all, exclude);
      if (slot === undefined && exclude !== undefined) slot = this.choose(all, undefined);
    }
    if (slot === undefined) return undefined;
    slot.outstanding++;
    return new SlotLease(slot, this);
  }

  report(slot: Slot, outcome: AttemptOutcome, latencyMs: number): void {
    if (slot.outstanding > 0) slot.outstanding--;
    const failed = outcome !== 'success';
    let observed = latencyMs >= 0 ? latencyMs : 0;
    // A failure is at least twice as expensive as the usual answer: a fast
    // failure (refused connection, instant 503) must not attract traffic.
    if (failed && slot.ewma > 0 && observed < 2 * slot.ewma) observed = 2 * slot.ewma;
    slot.ewma = slot.ewma < 0 ? observed : slot.ewma + this.alpha * (observed - slot.ewma);
    if (!failed) {
      slot.consecutiveFailures = 0;
      return;
    }
    const outlier = this.outlier;
    if (outlier === undefined) return;
    if (outcome === 'server-error' && !outlier.countServerErrors) return;
    slot.consecutiveFailures++;
    if (slot.consecutiveFailures >= outlier.consecutiveErrors && !slot.ejected && !slot.removed) this.eject(slot, outlier);
  }

  // ---- balancers ------------------------------------------------------------

  private leastOutstanding(list: readonly Slot[], exclude: ReadonlySet<string> | undefined): Slot | undefined {
    const n = list.length;
    // Rotate the starting point so ties spread instead of piling on the first instance.
    const start = this.cursor % n;
    this.cursor = (this.cursor + 1) & 0x3fffffff;
    let best: Slot | undefined;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      let i = start + k;
      if (i >= n) i -= n;
      const s = list[i] as Slot;
      if (!s.available || (exclude !== undefined && exclude.has(s.instance.id))) continue;
      const score = s.outstanding / s.instance.weight;
      if (score < bestScore) {
        best = s;
        bestScore = score;
      }
    }
    return best;
  }

  private powerOfTwo(list: readonly Slot[], exclude: ReadonlySet<string> | undefined): Slot | undefined {
    const n = list.length;
    let m = 0;
    let only: Slot | undefined;
    for (let i = 0; i < n; i++) {
      const s = list[i] as Slot;
      if (!s.available || (exclude !== undefined && exclude.has(s.instance.id))) continue;
      m++;
      only = s;
    }
    if (m <= 1) return only;
    const x = Math.floor(this.random() * m);
    let y = Math.floor(this.random() * (m - 1));
    if (y >= x) y++;
    let a: Slot | undefined;
    let b: Slot | undefined;
    for (let i = 0, e = 0; i < n; i++) {
      const s = list[i] as Slot;
      if (!s.available || (exclude !== undefined && exclude.has(s.instance.id))) continue;
      if (e === x) a = s;
      else if (e === y) b = s;
      e++;
    }
    if (a === undefined || b === undefined) return a ?? b;
    return cheaper(a, b);
  }

  // ---- shuffle sharding -----------------------------------------------------

  private shard(tenant: string): Slot[] {
    const cached = this.shards.get(tenant);
    if (cached !== undefined) return cached;
    const all = this.slots;
    const size = Math.min(this.shardSize ?? all.length, all.length);
    const scored = all.map((slot, index) => ({ slot, index, score: pairHash(tenant, slot.instance.id) }));
    scored.sort((p, q) => q.score - p.score || (p.slot.instance.id < q.slot.instance.id ? -1 : 1));
    const members = scored.slice(0, size);
    members.sort((p, q) => p.index - q.index);
    const shard = members.map((m) => m.slot);
    if (this.shards.size >= MAX_SHARD_CACHE) this.shards.clear();
    this.shards.set(tenant, shard);
    return shard;
  }

  shardOf(tenant: string): string[] {
    const all = this.slots;
    const list = this.shardSize !== undefined && this.shardSize < all.length ? this.shard(tenant) : all;
    return list.map((s) => s.instance.id);
  }

  // ---- outlier ejection -----------------------------------------------------

  private eject(slot: Slot, outlier: ResolvedOutlier): void {
    const allowed = Math.floor((this.slots.length * outlier.maxEjectionPercent) / 100);
    if (this.ejectedCount + 1 > allowed) {
      if (!slot.refusalReported) {
        slot.refusalReported = true;
        this.emit({ type: 'ejection-refused', service: this.name, id: slot.instance.id, ejected: this.ejectedCount, allowed });
      }
      return;
    }
    const now = this.clock.now();
    // An instance that stayed in for longer than the longest ejection starts over at the base time.
    if (now - slot.returnedAt > outlier.maxEjectionMs) slot.ejections = 0;
    slot.ejections++;
    const durationMs = Math.min(outlier.baseEjectionMs * slot.ejections, outlier.maxEjectionMs);
    slot.ejected = true;
    slot.refusalReported = false;
    slot.ejectedUntil = now + durationMs;
    slot.refresh();
    this.ejectedCount++;
    slot.ejectTimer = this.clock.setTimer(() => this.unEject(slot), durationMs);
    this.emit({ type: 'ejected', service: this.name, id: slot.instance.id, ejections: slot.ejections, durationMs });
  }

  private unEject(slot: Slot): void {
    slot.ejectTimer = undefined;
    if (!slot.ejected) return;
    slot.ejected = false;
    slot.consecutiveFailures = 0;
    slot.returnedAt = this.clock.now();
    slot.refresh();
    if (!slot.removed) {
      this.ejectedCount--;
      this.emit({ type: 'returned', service: this.name, id: slot.instance.id });
    }
  }

  // ---- active health checks -------------------------------------------------

  checkHealth(): Promise<void> {
    const health = this.health;
    if (health === undefined || this.closed) return Promise.resolve();
    this.healthRound ??= Promise.all(this.slots.map((slot) => this.checkOne(slot, health))).then(
      () => {
        this.healthRound = undefined;
      },
      (error: unknown) => {
        this.healthRound = undefined;
        this.onError(error);
      },
    );
    return this.healthRound;
  }

  private scheduleHealth(): void {
    const health = this.health;
    if (health === undefined || this.closed) return;
    this.healthTimer = this.clock.setTimer(() => {
      this.healthTimer = undefined;
      void this.checkHealth().then(() => this.scheduleHealth());
    }, health.intervalMs);
  }

  private async checkOne(slot: Slot, health: ResolvedHealth): Promise<void> {
    const controller = new AbortController();
    const timer = this.clock.setTimer(() => controller.abort(new Error(`health check timed out after ${health.timeoutMs} ms`)), health.timeoutMs);
    let ok: boolean;
    try {
      ok = await Promise.race([
        health.check(slot.instance, controller.signal),
        new Promise<false>((resolve) => controller.signal.addEventListener('abort', () => resolve(false), { once: true })),
      ]);
    } catch {
      ok = false;
    } finally {
      timer.cancel();
      controller.abort();
    }
    if (slot.removed || this.closed) return;
    this.applyCheck(slot, ok === true, health);
  }

  private applyCheck(slot: Slot, ok: boolean, health: ResolvedHealth): void {
    const before = slot.health;
    if (ok) {
      slot.checkFailures = 0;
      slot.checkPasses++;
      // The first verdict counts at once; afterwards the thresholds apply.
      if (before === 'unknown' || (before === 'unhealthy' && slot.checkPasses >= health.healthyThreshold)) slot.health = 'healthy';
    } else {
      slot.checkPasses = 0;
      slot.checkFailures++;
      if (before === 'unknown' || (before === 'healthy' && slot.checkFailures >= health.unhealthyThreshold)) slot.health = 'unhealthy';
    }
    if (slot.health !== before) {
      slot.refresh();
      this.emit({ type: 'health', service: this.name, id: slot.instance.id, health: slot.health as 'healthy' | 'unhealthy' });
    }
  }

  // ---- membership -----------------------------------------------------------

  private setInstances(instances: readonly Instance[]): void {
    if (this.closed || sameInstances(this.slots, instances)) return;
    const previous = new Map<string, Slot>();
    for (const slot of this.slots) previous.set(slot.instance.id, slot);
    const next: Slot[] = [];
    for (const instance of instances) {
      const slot = previous.get(instance.id);
      if (slot !== undefined && slot.instance.url === instance.url) {
        slot.instance = instance;
        previous.delete(instance.id);
        next.push(slot);
      } else {
        next.push(new Slot(instance));
      }
    }
    for (const gone of previous.values()) this.retire(gone);
    this.slots = next;
    this.shards.clear();
    this.emit({ type: 'instances', service: this.name, ids: next.map((s) => s.instance.id) });
  }

  private retire(slot: Slot): void {
    slot.removed = true;
    if (slot.ejected) this.ejectedCount--;
    slot.ejectTimer?.cancel();
    slot.ejectTimer = undefined;
  }

  instances(): readonly Instance[] {
    return this.slots.map((s) => s.instance);
  }

  status(): InstanceStatus[] {
    const now = this.clock.now();
    const wall = Date.now();
    return this.slots.map((s) => ({
      id: s.instance.id,
      url: s.instance.url,
      health: s.health,
      ejected: s.ejected,
      ejectedUntil: s.ejected ? Math.round(wall + (s.ejectedUntil - now)) : undefined,
      ejections: s.ejections,
      outstanding: s.outstanding,
      latencyEwmaMs: s.ewma < 0 ? undefined : s.ewma,
      consecutiveFailures: s.consecutiveFailures,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.healthTimer?.cancel();
    this.healthTimer = undefined;
    for (const slot of this.slots) {
      slot.ejectTimer?.cancel();
      slot.ejectTimer = undefined;
    }
    await this.discovery.close();
  }

  private emit(event: UpstreamEvent): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent(event);
    } catch (error) {
      this.onError(error);
    }
  }
}

/** Smooth weighted round-robin (nginx's): even spacing, exact weight ratios, O(n) per pick, no allocation. */
function roundRobin(list: readonly Slot[], exclude: ReadonlySet<string> | undefined): Slot | undefined {
  let best: Slot | undefined;
  let total = 0;
  for (let i = 0; i < list.length; i++) {
    const s = list[i] as Slot;
    if (!s.available || (exclude !== undefined && exclude.has(s.instance.id))) continue;
    const w = s.instance.weight;
    s.current += w;
    total += w;
    if (best === undefined || s.current > best.current) best = s;
  }
  if (best !== undefined) best.current -= total;
  return best;
}

/**
 * P2C: the candidate with the lower expected wait ≈ latency EWMA × (outstanding + 1), per unit of
 * weight. While either candidate has no latency yet, outstanding alone decides
 * (so a new instance is tried, but not flooded).
 */
function cheaper(a: Slot, b: Slot): Slot {
  const loadA = (a.outstanding + 1) / a.instance.weight;
  const loadB = (b.outstanding + 1) / b.instance.weight;
  if (a.ewma < 0 || b.ewma < 0) return loadB < loadA ? b : a;
  // A small floor keeps a 0 ms EWMA from making outstanding irrelevant.
  return loadB * (b.ewma + 0.01) < loadA * (a.ewma + 0.01) ? b : a;
}

function sameInstances(slots: readonly Slot[], instances: readonly Instance[]): boolean {
  if (slots.length !== instances.length) return false;
  for (let i = 0; i < slots.length; i++) {
    const a = (slots[i] as Slot).instance;
    const b = instances[i] as Instance;
    if (a === b) continue;
    if (a.id !== b.id || a.url !== b.url || a.weight !== b.weight) return false;
    const ka = Object.keys(a.metadata);
    if (ka.length !== Object.keys(b.metadata).length) return false;
    for (const k of ka) if (a.metadata[k] !== b.metadata[k]) return false;
  }
  return true;
}

function positiveInt(service: string, what: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`upstream "${service}": ${what} must be an integer >= 1, got ${String(value)}`);
  return value;
}

function positive(service: string, what: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new TypeError(`upstream "${service}": ${what} must be a positive number, got ${String(value)}`);
  return value;
}

function resolveOutlier(service: string, options: OutlierEjectionOptions | false | undefined): ResolvedOutlier | undefined {
  if (options === false) return undefined;
  const o = options ?? {};
  const base = positive(service, 'outlierEjection.baseEjectionMs', o.baseEjectionMs ?? 30_000);
  const pct = o.maxEjectionPercent ?? 50;
  if (!(pct >= 0 && pct <= 100)) throw new TypeError(`upstream "${service}": outlierEjection.maxEjectionPercent must be in [0, 100], got ${String(pct)}`);
  return {
    consecutiveErrors: positiveInt(service, 'outlierEjection.consecutiveErrors', o.consecutiveErrors ?? 5),
    countServerErrors: o.countServerErrors ?? true,
    baseEjectionMs: base,
    maxEjectionMs: Math.max(base, positive(service, 'outlierEjection.maxEjectionMs', o.maxEjectionMs ?? 300_000)),
    maxEjectionPercent: pct,
  };
}

function resolveHealth(service: string, options: HealthCheckOptions | false | undefined): ResolvedHealth | undefined {
  if (options === undefined || options === false) return undefined;
  const path = options.path ?? '/health';
  if (!path.startsWith('/')) throw new TypeError(`upstream "${service}": healthCheck.path must start with "/", got ${JSON.stringify(path)}`);
  return {
    intervalMs: positive(service, 'healthCheck.intervalMs', options.intervalMs ?? 5_000),
    timeoutMs: positive(service, 'healthCheck.timeoutMs', options.timeoutMs ?? 1_000),
    healthyThreshold: positiveInt(service, 'healthCheck.healthyThreshold', options.healthyThreshold ?? 2),
    unhealthyThreshold: positiveInt(service, 'healthCheck.unhealthyThreshold', options.unhealthyThreshold ?? 3),
    check: options.check ?? ((instance, signal) => httpCheck(instance.url + path, signal)),
  };
}

/** GET `url`; a 2xx passes. The body is drained so the connection is reused. */
export async function httpCheck(url: string, signal: AbortSignal): Promise<boolean> {
  const response = await request(url, { method: 'GET', signal, headers: { 'user-agent': 'bulwark-gateway-health' } });
  await response.body.dump();
  return response.statusCode >= 200 && response.statusCode < 300;
}

/**
 * An upstream service over static instances or a discovery source, with the
 * chosen balancer, optional active health checks, passive outlier ejection
 * (on by default) and optional shuffle sharding.
 *
 * @example
 * ```ts
 * const users = createUpstream({ name: 'users', instances: ['http://10.0.0.1:3000', 'http://10.0.0.2:3000'], balancer: 'p2c' });
 * const lease = users.pick({ tenant, exclude: tried });
 * if (lease === undefined) return reply503();
 * // ... forward to lease.instance.url, then:
 * lease.done(status >= 500 ? 'server-error' : 'success', elapsedMs);
 * ```
 */
export function createUpstream(options: UpstreamOptions): Upstream {
  if (typeof options.name !== 'string' || options.name === '') throw new TypeError('upstream: name must be a non-empty string');
  return new UpstreamImpl(options.name, options);
}
