/**
 * Readiness: the dependency checks that decide whether this instance should
 * receive traffic. `run()` starts every registered check at once, bounds each
 * by its own timeout on the injected clock, and reports each one's outcome.
 * Once draining has begun the instance is not ready, whatever the checks say.
 */
import { systemClock, type Clock } from '@bulwark/resilience';

/** A dependency check: resolves when the dependency is usable, throws (or rejects) when not. Receives a signal aborted at its timeout. */
export type ReadinessCheck = (signal: AbortSignal) => unknown;

/** The outcome of one check. */
export interface CheckOutcome {
  status: 'up' | 'down';
  /** Why it is down: `timed out after <n> ms`, or `failed` with the error's `code` when it has one. Never the error message, which may hold internals. */
  reason?: string;
}

/** The outcome of a readiness probe. */
export interface ReadinessReport {
  ready: boolean;
  draining: boolean;
  checks: Record<string, CheckOutcome>;
}

export interface ReadinessOptions {
  /** Default timeout of a check. Default 2 000 ms. */
  defaultTimeoutMs?: number;
  clock?: Clock;
  /** Receives the error of each failed check (for the log). */
  onCheckError?: (name: string, error: unknown) => void;
  /** True once the instance drains; it is then not ready whatever the checks say. Default: never. */
  isDraining?: () => boolean;
}

/**
 * The registered readiness checks.
 *
 * @example
 * ```ts
 * app.readiness.add('postgres', () => store.db.selectNoFrom((eb) => eb.lit(1).as('one')).execute(), { timeoutMs: 500 });
 * ```
 */
export class Readiness {
  private readonly checks = new Map<string, { check: ReadinessCheck; timeoutMs: number }>();
  private readonly clock: Clock;
  private readonly defaultTimeoutMs: number;
  private readonly onCheckError: ((name: string, error: unknown) => void) | undefined;
  private readonly isDraining: () => boolean;

  constructor(options: ReadinessOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 2_000;
    this.onCheckError = options.onCheckError;
    this.isDraining = options.isDraining ?? (() => false);
  }

  /** True once the instance drains. */
  get draining(): boolean {
    return this.isDraining();
  }

  /** Registers a check under a unique name. */
  add(name: string, check: ReadinessCheck, options: { timeoutMs?: number } = {}): this {
    if (typeof name !== 'string' || name === '') throw new TypeError('readiness: a check needs a non-empty name');
    if (this.checks.has(name)) throw new TypeError(`readiness: a check named "${name}" is already registered`);
    if (typeof check !== 'function') throw new TypeError(`readiness: check "${name}" must be a function`);
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new TypeError(`readiness: check "${name}" needs a positive finite timeoutMs, got ${String(timeoutMs)}`);
    this.checks.set(name, { check, timeoutMs });
    return this;
  }

  /** Runs every check in parallel, each within its timeout. */
  async run(): Promise<ReadinessReport> {
    const names = [...this.checks.keys()];
    const outcomes = await Promise.all([...this.checks.values()].map(({ check, timeoutMs }, i) => this.runOne(names[i] as string, check, timeoutMs)));
    const checks: Record<string, CheckOutcome> = {};
    const draining = this.draining;
    let ready = !draining;
    names.forEach((name, i) => {
      const outcome = outcomes[i] as CheckOutcome;
      checks[name] = outcome;
      if (outcome.status === 'down') ready = false;
    });
    return { ready, draining, checks };
  }

  private runOne(name: string, check: ReadinessCheck, timeoutMs: number): Promise<CheckOutcome> {
    const controller = new AbortController();
    return new Promise<CheckOutcome>((resolve) => {
      let settled = false;
      const timer = this.clock.setTimer(() => {
        if (settled) return;
        settled = true;
        controller.abort(new Error(`readiness check "${name}" timed out`));
        resolve({ status: 'down', reason: `timed out after ${timeoutMs} ms` });
      }, timeoutMs);
      const finish = (outcome: CheckOutcome, error?: unknown): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        if (outcome.status === 'down') this.onCheckError?.(name, error);
        resolve(outcome);
      };
      try {
        Promise.resolve(check(controller.signal)).then(
          () => finish({ status: 'up' }),
          (error: unknown) => finish(failed(error), error),
        );
      } catch (error) {
        finish(failed(error), error);
      }
    });
  }
}

function failed(error: unknown): CheckOutcome {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return { status: 'down', reason: typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? `failed (${code})` : 'failed' };
}
