/**
 * The one shape every policy has, and the chain that composes them.
 *
 * A policy is a `Stage`: given the call's chain, its scope and its position,
 * it does its work around `chain.next(scope, index)`. A pipeline is an array
 * of stages walked by index, so composing policies allocates nothing per layer.
 */
import type { Clock } from './clock.js';
import { DeadlineExceededError } from './errors.js';
import { rejectSoon } from './reject-soon.js';
import { runInScope, Scope, type CallContext, type ExecuteOptions } from './scope.js';

/** The function a policy runs. It may return a value or a promise. */
export type Operation<T> = (ctx: CallContext) => T | PromiseLike<T>;

/** One layer of a pipeline. Implemented by every policy. */
export interface Stage {
  run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T>;
}

/** The public face of every policy and of a pipeline. */
export interface Policy {
  /** Name used in events, errors and metrics. */
  readonly name: string;
  /** The clock this policy reads and sets timers on. */
  readonly clock: Clock;
  /** The stages this policy contributes to a pipeline (itself, or a pipeline's members). */
  readonly stages: readonly Stage[];
  /**
   * Runs `fn` under this policy.
   *
   * @example
   * ```ts
   * const user = await policy.execute(({ signal }) => fetch(url, { signal }));
   * ```
   */
  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T>;
}

/** One call travelling through a pipeline's stages. */
export class Chain<T> {
  constructor(
    private readonly stages: readonly Stage[],
    private readonly fn: Operation<T>,
  ) {}

  /** Runs the stage at `index`, or the operation itself past the last stage. */
  next(scope: Scope, index: number): Promise<T> {
    const stage = this.stages[index];
    if (stage !== undefined) return stage.run(this, scope, index + 1);
    try {
      const result = this.fn(scope);
      return result instanceof Promise ? (result as Promise<T>) : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** Runs `fn` through `stages` in a fresh root scope. Shared by every policy's `execute`. */
export function executeStages<T>(stages: readonly Stage[], clock: Clock, fn: Operation<T>, options: ExecuteOptions | undefined): Promise<T> {
  if (options === undefined && stages.length > 0) {
    // Fast path: no per-call options. The scope may still inherit an ambient deadline.
    const scope = Scope.root(clock, undefined);
    const result = new Chain(stages, fn).next(scope, 0);
    return scope.parent === undefined ? result : settle(scope, result);
  }
  const scope = Scope.root(clock, options);
  if (scope.aborted) {
    scope.dispose();
    return rejectSoon(scope.reason);
  }
  const ownDeadline = options !== undefined && (options.timeoutMs !== undefined || options.deadline !== undefined) && scope.deadline !== Infinity;
  let timer: { cancel(): void } | undefined;
  if (ownDeadline) {
    const left = scope.deadline - clock.now();
    if (left <= 0) {
      scope.dispose();
      return rejectSoon(new DeadlineExceededError());
    }
    scope.markAbortable();
    timer = clock.setTimer(() => scope.abort(new DeadlineExceededError()), left);
  }
  // A per-call budget is ambient like a deadline policy's, so nested calls and outgoing headers see it.
  const chain = new Chain(stages, fn);
  const result = ownDeadline ? runInScope(scope, startChain, chain, scope) : chain.next(scope, 0);
  const raced = ownDeadline || options?.signal !== undefined ? scope.race(result) : result;
  return settle(scope, raced, timer);
}

function startChain<T>(chain: Chain<T>, scope: Scope): Promise<T> {
  return chain.next(scope, 0);
}

async function settle<T>(scope: Scope, result: Promise<T>, timer?: { cancel(): void }): Promise<T> {
  try {
    return await result;
  } finally {
    timer?.cancel();
    scope.dispose();
  }
}

/**
 * Base class of the policies in this package: `execute` runs the policy as a
 * one-stage pipeline.
 */
export abstract class PolicyBase implements Policy, Stage {
  readonly stages: readonly Stage[] = [this];

  constructor(
    readonly name: string,
    readonly clock: Clock,
  ) {}

  abstract run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T>;

  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    return executeStages(this.stages, this.clock, fn, options);
  }
}
