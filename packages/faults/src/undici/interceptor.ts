/**
 * `faultInterceptor`: applies the injector's outbound rules to the calls an
 * undici dispatcher makes, as an interceptor (`pool.compose(faultInterceptor(...))`,
 * or the `interceptors` option of `@bulwark/http/client`). A dispatcher is
 * made per calling module and callee, so the interceptor is told both.
 *
 * - **latency**: the call is sent after the delay.
 * - **error**: a response made here — the rule's status, an
 *   `application/problem+json` body of type `https://bulwark.dev/problems/faults/injected`,
 *   header `x-bulwark-fault` — and nothing is sent.
 * - **hang** / **partition**: nothing is sent and nothing comes back, until
 *   the caller aborts (its abort reason, as for any aborted call), `hangMs`
 *   passes (a socket error, as when a connection is reset), or the rule is
 *   removed (the call is sent then).
 * - **reset**: fails with an error shaped like undici's own when a
 *   connection is reset — `SocketError`, code `UND_ERR_SOCKET`, its cause a
 *   `ECONNRESET` — so a client classifies it as the network failure it is.
 * - **crash**: the process sends itself the rule's signal (after `SIGTERM`,
 *   the call is sent and the process's shutdown decides the rest).
 *
 * Every wait honours the call's abort signal and clears its timer; an
 * injected failure is recognisable with `injectedFaultOf(error)`.
 *
 * @example
 * ```ts
 * const pool = new Pool('http://payments:8080').compose(faultInterceptor(injector, { module: 'orders', dependency: ['payments', 'orders-payments'] }));
 * ```
 */
import { errors, type Dispatcher } from 'undici';
import { FaultOptionError, faultProblemTypes, markInjected } from '../errors.js';
import type { AppliedFault, FaultDecision, FaultInjector, LiftReason } from '../injector.js';
import type { Clock, Timer } from '@bulwark/resilience';

export interface FaultInterceptorOptions {
  /** The module making the calls, for `match.module`. */
  module?: string;
  /** The names the callee answers to, for `match.dependency`: its module, the client's name, ... */
  dependency?: string | readonly string[];
}

/** Response header naming the rule behind an injected answer. */
const FAULT_HEADER = 'x-bulwark-fault';

/** An interceptor applying `injector`'s outbound rules to the calls of one caller to one callee. */
export function faultInterceptor(injector: FaultInjector, options: FaultInterceptorOptions = {}): Dispatcher.DispatcherComposeInterceptor {
  if (typeof (injector as { decide?: unknown } | undefined)?.decide !== 'function') throw new FaultOptionError('faultInterceptor', 'injector', 'a FaultInjector', injector);
  const module = options.module;
  if (module !== undefined && (typeof module !== 'string' || module === '')) throw new FaultOptionError('faultInterceptor', 'module', 'a non-empty string', module);
  const raw = options.dependency;
  const dependencies: readonly string[] | undefined = raw === undefined ? undefined : typeof raw === 'string' ? [raw] : [...raw];
  if (dependencies?.some((d) => typeof d !== 'string' || d === '') === true) throw new FaultOptionError('faultInterceptor', 'dependency', 'a non-empty string or an array of them', raw);

  return (dispatch) =>
    function dispatchWithFaults(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (!injector.active) return dispatch(opts, handler);
      const decision = injector.decide({ direction: 'outbound', module, method: String(opts.method).toUpperCase(), path: opts.path, dependencies });
      if (decision === undefined) return dispatch(opts, handler);
      new HeldCall(dispatch, opts, handler, decision, injector.clock).start();
      return true;
    };
}

/** One faulted call: the controller its handler sees until it is sent for real (if ever). */
class HeldCall implements Dispatcher.DispatchController {
  private timer: Timer | undefined;
  private offLift: (() => void) | undefined;
  private isAborted = false;
  private isPaused = false;
  private abortReason: Error | null = null;
  /** Sent for real, or failed/answered here: this controller is done. */
  private settled = false;

  constructor(
    private readonly dispatch: Dispatcher.Dispatch,
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly decision: FaultDecision,
    private readonly clock: Clock,
  ) {}

  get aborted(): boolean {
    return this.isAborted;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get reason(): Error | null {
    return this.abortReason;
  }

  /** The caller aborted (its signal, a timeout): the call fails with its reason, whatever was held. */
  abort(reason: Error): void {
    if (this.isAborted || this.settled) return;
    this.isAborted = true;
    this.abortReason = reason;
    this.fail(reason);
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    this.isPaused = false;
  }

  start(): void {
    // Gives the caller our abort: its signal now reaches this call while it is held here.
    this.handler.onRequestStart?.(this, {});
    if (this.settled) return; // aborted already
    const { delayMs } = this.decision;
    if (delayMs > 0) this.timer = this.clock.setTimer(() => this.afterDelay(), delayMs);
    else this.afterDelay();
  }

  private afterDelay(): void {
    this.timer = undefined;
    if (this.settled) return;
    const fault = this.decision.fault;
    if (fault === undefined) return this.send();
    const rule = fault.rule;
    switch (rule.kind) {
      case 'latency':
        return this.send();
      case 'error':
        return this.answer(fault);
      case 'reset':
        return this.fail(resetError(fault, 'other side closed (connection reset by an injected fault)'));
      case 'crash':
        process.kill(process.pid, rule.signal ?? 'SIGKILL');
        if (rule.signal === 'SIGTERM') this.send();
        return;
      case 'hang':
      case 'partition':
        return this.hold(fault);
    }
  }

  private hold(fault: AppliedFault): void {
    const hangMs = fault.rule.hangMs;
    if (hangMs !== undefined) this.timer = this.clock.setTimer(() => this.fail(resetError(fault, `connection reset after ${hangMs} ms without an answer (injected ${fault.rule.kind})`)), hangMs);
    this.offLift = fault.onLift((reason: LiftReason) => {
      if (reason === 'removed') this.send();
      else this.fail(resetError(fault, `connection reset: the fault injector closed (injected ${fault.rule.kind})`));
    });
  }

  /** Sends the call for real: from here on, the dispatcher's own controller drives it. */
  private send(): void {
    if (!this.release()) return;
    try {
      this.dispatch(this.opts, this.handler);
    } catch (error) {
      this.handler.onResponseError?.(this, error as Error);
    }
  }

  /** A synthetic problem+json answer with the rule's status. */
  private answer(fault: AppliedFault): void {
    if (!this.release()) return;
    discardBody(this.opts.body);
    const status = fault.rule.status ?? 503;
    const body = Buffer.from(
      JSON.stringify({ type: faultProblemTypes.injected, title: 'Injected fault', status, detail: `fault rule "${fault.rule.id}" answered ${status}`, code: 'BULWARK_FAULT_INJECTED', rule: fault.rule.id }),
    );
    const headers = { 'content-type': 'application/problem+json; charset=utf-8', 'content-length': String(body.length), [FAULT_HEADER]: fault.rule.id };
    try {
      this.handler.onResponseStart?.(this, status, headers, 'Injected Fault');
      if (this.isAborted) return;
      this.handler.onResponseData?.(this, body);
      if (this.isAborted) return;
      this.handler.onResponseEnd?.(this, {});
    } catch (error) {
      if (!this.isAborted) this.handler.onResponseError?.(this, error as Error);
    }
  }

  private fail(error: Error): void {
    if (!this.release()) return;
    this.handler.onResponseError?.(this, error);
  }

  /** Clears the timer and the lift listener; false when already settled. */
  private release(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.offLift?.();
    this.offLift = undefined;
    return true;
  }
}

/** A request body stream that will never be sent is destroyed, as undici does with the body of a failed request. */
function discardBody(body: unknown): void {
  const stream = body as { destroy?: unknown; on?: unknown; pipe?: unknown } | null | undefined;
  if (stream !== null && typeof stream === 'object' && typeof stream.pipe === 'function' && typeof stream.destroy === 'function' && typeof stream.on === 'function') {
    (stream as { on(event: string, listener: () => void): void }).on('error', () => undefined);
    (stream as { destroy(): void }).destroy();
  }
}

/** An error like the one undici raises when the peer resets the connection, marked as injected. */
function resetError(fault: AppliedFault, message: string): Error {
  const cause = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
  const error = new errors.SocketError(message, undefined);
  error.cause = cause;
  return markInjected(error, { rule: fault.rule.id, kind: fault.rule.kind });
}
