/**
 * Carrying a deadline across HTTP. The caller writes its remaining budget in
 * milliseconds; the callee takes `min(own timeout, remaining - margin)`, so it
 * gives up before its caller does and the answer still has time to travel back.
 *
 * @example
 * ```ts
 * // client: inside a policy's execute, the ambient deadline is known
 * const value = outgoingDeadlineHeader();
 * if (value !== undefined) headers[DEADLINE_HEADER] = value;
 * // server
 * const budget = incomingBudgetMs(req.headers[DEADLINE_HEADER], { marginMs: 5, maxMs: 10_000 });
 * await policy.execute(handler, { timeoutMs: budget });
 * ```
 */
import { systemClock, type Clock } from './clock.js';
import { currentScope } from './scope.js';

/** Header that carries the remaining budget, in whole milliseconds. */
export const DEADLINE_HEADER = 'bulwark-deadline-ms';

/** Milliseconds left in the ambient call's budget (`Infinity` outside any deadline). */
export function remainingBudgetMs(): number {
  return currentScope()?.remaining() ?? Infinity;
}

/** The ambient deadline as an absolute time on `clock`, or `undefined` when there is none. */
export function currentDeadline(): number | undefined {
  const deadline = currentScope()?.deadline;
  return deadline === undefined || deadline === Infinity ? undefined : deadline;
}

/** The header value for an outgoing call: the remaining budget, or `undefined` when unbounded. */
export function outgoingDeadlineHeader(remainingMs: number = remainingBudgetMs()): string | undefined {
  if (remainingMs === Infinity) return undefined;
  return String(Math.max(0, Math.floor(remainingMs)));
}

export interface IncomingBudgetOptions {
  /** Kept back for the response's trip home. Default 5 ms. */
  marginMs?: number;
  /** This service's own ceiling; also used when the header is absent. Default: unbounded. */
  maxMs?: number;
}

/**
 * The budget a server should give a request, from the incoming header value.
 * A missing or malformed header yields `maxMs` (a caller cannot lift a
 * server's ceiling, and garbage is not trusted); a spent budget yields 0.
 */
export function incomingBudgetMs(value: string | string[] | undefined, options: IncomingBudgetOptions = {}): number {
  const max = options.maxMs ?? Infinity;
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || !/^\d{1,15}$/.test(raw.trim())) return max;
  const remaining = Number(raw) - (options.marginMs ?? 5);
  return Math.max(0, Math.min(max, remaining));
}

/** Absolute deadline on `clock` for a budget in milliseconds (`Infinity` stays `Infinity`). */
export function deadlineIn(budgetMs: number, clock: Clock = systemClock): number {
  return budgetMs === Infinity ? Infinity : clock.now() + budgetMs;
}
