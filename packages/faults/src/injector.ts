/**
 * The fault injector: a process's fault rules, in memory, and the decision of
 * what to do to each request or call. The transports apply the decision —
 * `@bulwark/faults/fastify` to inbound requests, `@bulwark/faults/undici` to
 * outbound calls — so the injector itself does no I/O.
 *
 * Decisions, per request:
 * - every rule of the request's direction whose match holds is *matched* and
 *   draws from its own seeded stream whether it fires (`probability`);
 * - the delays of every firing `latency` rule add up;
 * - the first firing failure rule (error, hang, reset, crash, partition) in
 *   rule order is the fault applied, after the delays and its own `latency`;
 *   later firing failure rules are shadowed (matched, not injected).
 *
 * Changes are atomic: `replace` validates the whole set before anything
 * changes, and a request sees either the old rules or the new ones. Replacing
 * or removing a rule resets its counters and random streams, and lifts the
 * faults it holds right now (a hung request continues, a blackholed call is
 * sent); `close()` lifts them by failing them instead.
 *
 * @example
 * ```ts
 * const faults = new FaultInjector({ seed: 42, modules: ['orders', 'payments'] });
 * faults.set('payments-down', { kind: 'error', direction: 'inbound', match: { module: 'payments' }, probability: 0.5 });
 * faults.on('injected', (e) => log.warn(e, 'fault injected'));
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import { systemClock, type Clock } from '@bulwark/resilience';
import { FaultOptionError, UnknownFaultRuleError } from './errors.js';
import { ruleRandom, sampleLatency } from './random.js';
import {
  matchesRoute,
  parseRoutePattern,
  splitPath,
  validateFaultRule,
  validateFaultSet,
  validateSeed,
  type FaultDirection,
  type FaultKind,
  type FaultRule,
  type RoutePattern,
} from './rules.js';

/** The diagnostics channel every injection is also published on. */
export const FAULTS_CHANNEL = 'bulwark:faults:injected';
const injectedChannel = channel(FAULTS_CHANNEL);

/** One request or call, as the injector sees it. */
export interface FaultTarget {
  direction: FaultDirection;
  /** Inbound: the module whose path prefix the request falls under. Outbound: the module making the call. */
  module?: string | undefined;
  /** The HTTP method, upper case. */
  method: string;
  /** The request path (a query is ignored). */
  path: string;
  /** Outbound: every name the callee answers to (its module, the client's name). */
  dependencies?: readonly string[] | undefined;
}

/** Why a held fault ended early: its rule was removed or replaced, or the injector closed. */
export type LiftReason = 'removed' | 'closed';

/** The failure to apply to a request (after the decision's delay). */
export interface AppliedFault {
  readonly rule: FaultRule;
  /**
   * Calls `listener` if the fault is lifted before the transport is done with
   * it (a hang or a partition whose rule goes away); returns the function that
   * unregisters it. Called at once (asynchronously) when already lifted.
   */
  onLift(listener: (reason: LiftReason) => void): () => void;
}

/** What to do to one request: wait `delayMs`, then apply `fault` (if any) or let it through. */
export interface FaultDecision {
  delayMs: number;
  fault: AppliedFault | undefined;
}

export interface RuleStats {
  /** Requests or calls the rule's match selected (whether or not it fired). */
  matched: number;
  /** Requests or calls it was applied to. */
  injected: number;
}

/** A rule as `snapshot()` reports it. */
export type FaultRuleWithStats = FaultRule & { stats: RuleStats };

export interface FaultEvents {
  /** A rule was applied to a request or call. */
  injected: {
    rule: string;
    kind: FaultKind;
    direction: FaultDirection;
    module: string | undefined;
    /** Outbound: the callee (its first name). */
    dependency: string | undefined;
    method: string;
    path: string;
    /** The delay this rule added (latency rules, and a failure's own `latency`). */
    delayMs: number | undefined;
    /** An error rule's status. */
    status: number | undefined;
  };
  /** The rule set or the seed changed. */
  changed: { change: 'set' | 'remove' | 'replace' | 'clear'; id: string | undefined; seed: number; rules: number };
}

export type FaultListener<K extends keyof FaultEvents> = (event: FaultEvents[K]) => void;

export interface FaultInjectorOptions {
  /** Seed of every rule's random streams. Default 1. */
  seed?: number;
  /** Initial rules (validated like `replace`). */
  rules?: readonly unknown[];
  /** Module names a rule's `match.module` may take; a typo is then refused. Default: any. */
  modules?: readonly string[];
  /** The clock the transports delay and time hangs with. Default: the system clock. */
  clock?: Clock;
}

interface RuleState {
  readonly rule: FaultRule;
  readonly route: RoutePattern | undefined;
  readonly decide: () => number;
  readonly sample: () => number;
  matched: number;
  injected: number;
  lifted: LiftReason | undefined;
  readonly lifts: Set<(reason: LiftReason) => void>;
  readonly applied: AppliedFault;
}

export class FaultInjector {
  readonly clock: Clock;
  private currentSeed: number;
  private readonly modules: readonly string[] | undefined;
  private states: RuleState[] = [];
  private inbound: RuleState[] = [];
  private outbound: RuleState[] = [];
  private readonly listeners: { [K in keyof FaultEvents]: FaultListener<K>[] } = { injected: [], changed: [] };

  constructor(options: FaultInjectorOptions = {}) {
    this.clock = options.clock ?? systemClock;
    const modules: unknown = options.modules;
    if (modules !== undefined && (!Array.isArray(modules) || modules.some((m) => typeof m !== 'string' || m === ''))) {
      throw new FaultOptionError('FaultInjector', 'modules', 'an array of non-empty strings', modules);
    }
    this.modules = options.modules === undefined ? undefined : Array.from(options.modules);
    try {
      this.currentSeed = validateSeed(options.seed ?? 1);
    } catch {
      throw new FaultOptionError('FaultInjector', 'seed', 'a non-negative integer', options.seed);
    }
    if (options.rules !== undefined) this.replace({ rules: options.rules });
  }

  /** The seed every rule's random streams derive from. */
  get seed(): number {
    return this.currentSeed;
  }

  /** True when any rule is set (transports skip all work otherwise). */
  get active(): boolean {
    return this.states.length > 0;
  }

  /** Faults held right now (hung or blackholed requests and calls waiting for their end). */
  get held(): number {
    let n = 0;
    for (const s of this.states) n += s.lifts.size;
    return n;
  }

  /** The rules, in order (normal form). */
  rules(): FaultRule[] {
    return this.states.map((s) => s.rule);
  }

  get(id: string): FaultRule | undefined {
    return this.find(id)?.rule;
  }

  /** The counters of rule `id`. */
  stats(id: string): RuleStats {
    const state = this.find(id);
    if (state === undefined) throw new UnknownFaultRuleError(id);
    return { matched: state.matched, injected: state.injected };
  }

  /** The seed and every rule with its counters (what `GET /admin/faults` answers). */
  snapshot(): { seed: number; rules: FaultRuleWithStats[] } {
    return { seed: this.currentSeed, rules: this.states.map((s) => ({ ...s.rule, stats: { matched: s.matched, injected: s.injected } })) };
  }

  /**
   * Creates rule `id`, or replaces it in place (its counters and random
   * streams start again, the faults it holds are lifted). `rule` is validated
   * first: `FaultConfigError` names the field. Returns the rule in normal form.
   */
  set(id: string, rule: unknown): FaultRule {
    const state = this.newState(validateFaultRule(rule, { id, ...(this.modules === undefined ? {} : { modules: this.modules }) }));
    const i = this.states.findIndex((s) => s.rule.id === id);
    const next = [...this.states];
    if (i >= 0) next[i] = state;
    else next.push(state);
    const old = i >= 0 ? this.states[i] : undefined;
    this.install(next);
    if (old !== undefined) lift(old, 'removed');
    this.emit('changed', { change: 'set', id, seed: this.currentSeed, rules: next.length });
    return state.rule;
  }

  /**
   * Replaces the whole set — and the seed, when given — atomically: all of
   * `set` is validated first (`FaultConfigError` naming `rules[i].field`), and
   * nothing changes if any of it is refused.
   */
  replace(set: unknown): void {
    const valid = validateFaultSet(set, this.modules === undefined ? {} : { modules: this.modules });
    const old = this.states;
    if (valid.seed !== undefined) this.currentSeed = valid.seed;
    this.install(valid.rules.map((r) => this.newState(r)));
    for (const s of old) lift(s, 'removed');
    this.emit('changed', { change: 'replace', id: undefined, seed: this.currentSeed, rules: this.states.length });
  }

  /** Removes rule `id`; false when there was none. */
  remove(id: string): boolean {
    const old = this.find(id);
    if (old === undefined) return false;
    this.install(this.states.filter((s) => s !== old));
    lift(old, 'removed');
    this.emit('changed', { change: 'remove', id, seed: this.currentSeed, rules: this.states.length });
    return true;
  }

  /** Removes every rule (held faults are lifted: hung requests continue). */
  clear(): void {
    this.drop('removed');
  }

  /** Removes every rule and fails the faults held right now (hung requests are reset). For shutdown. */
  close(): void {
    this.drop('closed');
  }

  /**
   * What to do to one request or call; `undefined` when no rule applies (the
   * common case, decided without allocating when no rule is set).
   */
  decide(target: FaultTarget): FaultDecision | undefined {
    const list = target.direction === 'inbound' ? this.inbound : this.outbound;
    if (list.length === 0) return undefined;
    let segments: string[] | undefined;
    let delayMs = 0;
    let fault: RuleState | undefined;
    let hits: (RuleState | number)[] | undefined;
    for (const s of list) {
      const match = s.rule.match;
      if (match.module !== undefined && match.module !== target.module) continue;
      if (match.dependency !== undefined && target.dependencies?.includes(match.dependency) !== true) continue;
      if (s.route !== undefined) {
        if (target.direction !== 'inbound') continue;
        segments ??= splitPath(target.path);
        if (!matchesRoute(s.route, target.method, segments)) continue;
      }
      s.matched++;
      if (!(s.decide() < s.rule.probability)) continue;
      // Drawn for every firing rule, shadowed or not, so a rule's delays depend on its own matches only.
      const ms = s.rule.latency === undefined ? 0 : sampleLatency(s.rule.latency, s.sample);
      if (s.rule.kind !== 'latency') {
        if (fault !== undefined) continue; // shadowed by an earlier failure
        fault = s;
      }
      s.injected++;
      delayMs += ms;
      (hits ??= []).push(s, ms);
    }
    if (hits === undefined) return undefined;
    for (let i = 0; i < hits.length; i += 2) this.report(hits[i] as RuleState, target, hits[i + 1] as number);
    return { delayMs, fault: fault?.applied };
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof FaultEvents>(event: K, listener: FaultListener<K>): () => void {
    const list = this.listeners[event] as FaultListener<K>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  private report(s: RuleState, target: FaultTarget, delayMs: number): void {
    if (this.listeners.injected.length === 0 && !injectedChannel.hasSubscribers) return;
    const rule = s.rule;
    const event: FaultEvents['injected'] = {
      rule: rule.id,
      kind: rule.kind,
      direction: target.direction,
      module: target.module,
      dependency: target.dependencies?.[0],
      method: target.method,
      path: target.path,
      delayMs: rule.latency === undefined ? undefined : delayMs,
      status: rule.status,
    };
    this.emit('injected', event);
    if (injectedChannel.hasSubscribers) injectedChannel.publish(event);
  }

  private emit<K extends keyof FaultEvents>(event: K, payload: FaultEvents[K]): void {
    for (const listener of [...(this.listeners[event] as FaultListener<K>[])]) {
      try {
        listener(payload);
      } catch (error) {
        // A listener's bug must not change the fate of the request it observes.
        process.emitWarning(`bulwark: a faults "${event}" listener threw: ${String(error)}`);
      }
    }
  }

  private find(id: string): RuleState | undefined {
    return this.states.find((s) => s.rule.id === id);
  }

  private drop(reason: LiftReason): void {
    const old = this.states;
    this.install([]);
    for (const s of old) lift(s, reason);
    if (old.length > 0) this.emit('changed', { change: 'clear', id: undefined, seed: this.currentSeed, rules: 0 });
  }

  private install(states: RuleState[]): void {
    this.states = states;
    this.inbound = states.filter((s) => s.rule.direction !== 'outbound');
    this.outbound = states.filter((s) => s.rule.direction !== 'inbound');
  }

  private newState(rule: FaultRule): RuleState {
    const frozen = deepFreeze(rule);
    const state: RuleState = {
      rule: frozen,
      route: rule.match.route === undefined ? undefined : parseRoutePattern(rule.match.route),
      decide: ruleRandom(this.currentSeed, rule.id, 'decide'),
      sample: ruleRandom(this.currentSeed, rule.id, 'sample'),
      matched: 0,
      injected: 0,
      lifted: undefined,
      lifts: new Set(),
      applied: {
        rule: frozen,
        onLift(listener) {
          if (state.lifted !== undefined) {
            const reason = state.lifted;
            queueMicrotask(() => listener(reason));
            return () => undefined;
          }
          state.lifts.add(listener);
          return () => void state.lifts.delete(listener);
        },
      },
    };
    return state;
  }
}

function lift(state: RuleState, reason: LiftReason): void {
  if (state.lifted !== undefined) return;
  state.lifted = reason;
  const listeners = [...state.lifts];
  state.lifts.clear();
  for (const listener of listeners) {
    try {
      listener(reason);
    } catch (error) {
      process.emitWarning(`bulwark: a faults lift listener threw: ${String(error)}`);
    }
  }
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (typeof v === 'object' && v !== null) deepFreeze(v as object);
  return Object.freeze(value);
}
