/**
 * Composition. `pipeline(a, b, c)` runs `a` outermost and `c` innermost, as
 * given. `pipeline({ ... })` takes the policies by role and applies the
 * default order, which is:
 *
 *   deadline → fallback → retry → breaker → rateLimiter → bulkhead → timeout → hedge
 *
 * - the **deadline** is outermost so that it bounds everything, retries and waits included;
 * - **fallback** sits outside retry so it answers only once retries are spent (or the breaker,
 *   bulkhead or limiter refused), and inside the deadline, which bounds it too: when the total
 *   deadline passes the call fails with `DeadlineExceededError` (put a fallback outside the
 *   deadline if even that must be answered);
 * - **retry** is outside the breaker, so each attempt is judged by the breaker, and an open
 *   breaker fails the attempt fast (`CircuitOpenError` is not retryable);
 * - the **breaker** is outside the rate limiter and bulkhead: their refusals are not the
 *   dependency's fault and must not open it; an open breaker spends no tokens or slots;
 * - the **rate limiter** is outside the bulkhead so a refused call never waits for a slot;
 * - the **bulkhead** is outside the per-attempt **timeout**: time spent queueing is bounded by the
 *   bulkhead's own `maxQueueWaitMs`, and the timeout measures the dependency, not the queue;
 * - **hedge** is innermost: extra attempts share the attempt's slot and timeout. Hedges take no
 *   bulkhead slot of their own, so the extra concurrency they add is bounded by the hedge budget.
 */
import { InvalidOptionError } from './errors.js';
import { executeStages, type Operation, type Policy, type Stage } from './policy.js';
import type { ExecuteOptions } from './scope.js';
import type { Clock } from './clock.js';

/** Policies by role, for `pipeline({ ... })`. */
export interface PipelineRoles {
  deadline?: Policy;
  fallback?: Policy;
  retry?: Policy;
  breaker?: Policy;
  rateLimiter?: Policy;
  bulkhead?: Policy;
  timeout?: Policy;
  hedge?: Policy;
}

/** The default order, outermost first. */
export const defaultOrder: readonly (keyof PipelineRoles)[] = ['deadline', 'fallback', 'retry', 'breaker', 'rateLimiter', 'bulkhead', 'timeout', 'hedge'];

export class Pipeline implements Policy {
  readonly name: string;
  readonly clock: Clock;
  readonly stages: readonly Stage[];

  constructor(readonly policies: readonly Policy[]) {
    if (policies.length === 0) throw new InvalidOptionError('pipeline', 'policies', policies, 'at least one policy');
    const first = policies[0] as Policy;
    for (const policy of policies) {
      if (policy.clock !== first.clock) {
        throw new InvalidOptionError('pipeline', 'policies', policy.name, `policies that share one clock ("${policy.name}" has another clock than "${first.name}")`);
      }
    }
    this.clock = first.clock;
    this.name = policies.map((p) => p.name).join('>');
    this.stages = policies.flatMap((p) => p.stages);
  }

  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    return executeStages(this.stages, this.clock, fn, options);
  }
}

/**
 * Composes policies into one.
 *
 * @example
 * ```ts
 * // by role, in the default order
 * const inventory = pipeline({ retry: retry({ maxAttempts: 3 }), breaker: circuitBreaker(), bulkhead: bulkhead({ maxConcurrent: 20 }), timeout: timeout(200) });
 * // explicit order, outermost first
 * const custom = pipeline(deadline(1_000), retry(), timeout(200));
 * ```
 */
export function pipeline(roles: PipelineRoles): Pipeline;
export function pipeline(...policies: Policy[]): Pipeline;
export function pipeline(...args: [PipelineRoles] | Policy[]): Pipeline {
  const [first] = args;
  if (args.length === 1 && first !== undefined && !isPolicy(first)) {
    const roles = first;
    for (const key of Object.keys(roles)) {
      if (!(defaultOrder as readonly string[]).includes(key)) {
        throw new InvalidOptionError('pipeline', key, '(a policy)', `one of the roles ${defaultOrder.join(', ')}`);
      }
    }
    return new Pipeline(defaultOrder.flatMap((role) => (roles[role] === undefined ? [] : [roles[role]])));
  }
  for (const [i, p] of args.entries()) {
    if (!isPolicy(p)) throw new InvalidOptionError('pipeline', `policies[${i}]`, p, 'a policy');
  }
  return new Pipeline(args as Policy[]);
}

function isPolicy(value: unknown): value is Policy {
  return typeof value === 'object' && value !== null && Array.isArray((value as Policy).stages) && typeof (value as Policy).execute === 'function';
}
