/**
 * The context one call runs in: its deadline, attempt number, idempotency key
 * and cancellation. Policies derive child scopes (one per attempt, per hedge,
 * per timeout); aborting a scope aborts its children.
 *
 * The `AbortSignal` is created lazily, the first time someone reads
 * `ctx.signal`: an AbortController costs about 2 µs in Node 20, more than the
 * whole pipeline, and most success paths never look at it. Policies listen
 * for aborts through `onAbort`, which costs nothing until used.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from './clock.js';
import { rejectSoon } from './reject-soon.js';

/** What an operation receives from the policies that run it. */
export interface CallContext {
  /** Aborted when the call's deadline passes, its caller gives up, or a hedge wins. */
  readonly signal: AbortSignal;
  /** Absolute deadline on the policy clock (`Infinity` when there is none). */
  readonly deadline: number;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** The key that makes an unsafe operation safe to repeat, when the caller gave one. */
  readonly idempotencyKey: string | undefined;
  /** Milliseconds left before the deadline (`Infinity` when there is none). */
  remaining(): number;
}

/** Per-call options of `execute`. */
export interface ExecuteOptions {
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
  /** Relative budget for the whole call, in milliseconds (combined with any inherited deadline). */
  timeoutMs?: number;
  /** Absolute deadline on the policy clock. */
  deadline?: number;
  /** Travels with the call; required to retry or hedge an operation marked `idempotent: false`. */
  idempotencyKey?: string;
  /** False for unsafe operations (a POST that charges a card). Default true. */
  idempotent?: boolean;
}

/** Something that may be waiting on a scope and must hear about its abort. */
interface AbortListener {
  (reason: unknown): void;
}

const storage = new AsyncLocalStorage<Scope>();

/** The scope of the call the current code runs in, if any policy set one. */
export function currentScope(): Scope | undefined {
  return storage.getStore();
}

/** Runs `fn` with `scope` as the ambient scope, so nested calls inherit its deadline and cancellation. */
export function runInScope<A extends unknown[], R>(scope: Scope, fn: (...args: A) => R, ...args: A): R {
  return storage.run(scope, fn, ...args);
}

export class Scope implements CallContext {
  aborted = false;
  reason: unknown = undefined;
  /**
   * False while nothing can abort this scope (a root with no signal, no
   * deadline timer and no ambient parent): its children then skip
   * registering with it, which is most of a success path's bookkeeping.
   */
  abortable: boolean;
  private hook: AbortListener | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private listeners: AbortListener[] | undefined = undefined;
  private children: Scope[] | undefined = undefined;
  private indexInParent = -1;
  private external: AbortSignal | undefined = undefined;
  private onExternalAbort: (() => void) | undefined = undefined;

  constructor(
    readonly clock: Clock,
    readonly deadline: number,
    readonly attempt: number,
    readonly idempotencyKey: string | undefined,
    readonly idempotent: boolean,
    readonly parent: Scope | undefined,
  ) {
    this.abortable = parent !== undefined && parent.abortable;
  }

  /**
   * The scope an `execute` call starts in: inherits the ambient scope's
   * deadline and cancellation, narrowed by the call's own options.
   */
  static root(clock: Clock, options: ExecuteOptions | undefined): Scope {
    const ambient = storage.getStore();
    let deadline = ambient === undefined ? Infinity : ambient.deadline;
    let key = ambient?.idempotencyKey;
    let idempotent = ambient?.idempotent ?? true;
    if (options !== undefined) {
      if (options.deadline !== undefined && options.deadline < deadline) deadline = options.deadline;
      if (options.timeoutMs !== undefined) deadline = Math.min(deadline, clock.now() + options.timeoutMs);
      if (options.idempotencyKey !== undefined) key = options.idempotencyKey;
      if (options.idempotent !== undefined) idempotent = options.idempotent;
    }
    const scope = new Scope(clock, deadline, 1, key, idempotent, ambient);
    if (ambient !== undefined) ambient.adopt(scope);
    const signal = options?.signal;
    if (signal !== undefined) {
      scope.abortable = true;
      if (signal.aborted) scope.abort(signal.reason);
      else {
        scope.external = signal;
        scope.onExternalAbort = () => scope.abort(signal.reason);
        signal.addEventListener('abort', scope.onExternalAbort);
      }
    }
    return scope;
  }

  /** A child scope with its own (never later) deadline and attempt number. */
  child(deadline: number, attempt: number = this.attempt): Scope {
    const child = new Scope(this.clock, deadline < this.deadline ? deadline : this.deadline, attempt, this.idempotencyKey, this.idempotent, this);
    this.adopt(child);
    return child;
  }

  /** Declares that something (a timer, a hedge) may abort this scope, so its children must listen. */
  markAbortable(): void {
    this.abortable = true;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  remaining(): number {
    return this.deadline === Infinity ? Infinity : Math.max(0, this.deadline - this.clock.now());
  }

  /** Aborts this scope and every live child. Idempotent: the first reason wins. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const children = this.children;
    if (children !== undefined) {
      this.children = undefined;
      for (const child of children) {
        child.indexInParent = -1;
        child.abort(reason);
      }
    }
    const hook = this.hook;
    if (hook !== undefined) {
      this.hook = undefined;
      hook(reason);
    }
    const listeners = this.listeners;
    if (listeners !== undefined) {
      this.listeners = undefined;
      for (const listener of listeners) listener(reason);
    }
  }

  /**
   * Calls `listener` once when this scope aborts (at once if it already has),
   * with no way to stop listening: for the one party that owns the scope and
   * discards it when done.
   */
  setHook(listener: AbortListener): void {
    if (this.aborted) listener(this.reason);
    else if (this.hook === undefined) this.hook = listener;
    else (this.listeners ??= []).push(listener);
  }

  /** Calls `listener` once if this scope aborts; returns a function that stops listening. */
  onAbort(listener: AbortListener): () => void {
    (this.listeners ??= []).push(listener);
    return () => {
      const listeners = this.listeners;
      if (listeners === undefined) return;
      const i = listeners.indexOf(listener);
      if (i >= 0) listeners.splice(i, 1);
    };
  }

  /** Detaches this scope from its parent and external signal. Call when the scope's work is over. */
  dispose(): void {
    const parent = this.parent;
    if (parent !== undefined && this.indexInParent >= 0) {
      const siblings = parent.children as Scope[];
      const last = siblings.pop() as Scope;
      if (last !== this) {
        siblings[this.indexInParent] = last;
        last.indexInParent = this.indexInParent;
      }
      this.indexInParent = -1;
    }
    if (this.external !== undefined && this.onExternalAbort !== undefined) {
      this.external.removeEventListener('abort', this.onExternalAbort);
      this.external = undefined;
      this.onExternalAbort = undefined;
    }
  }

  /**
   * Settles with `promise`, or rejects with the abort reason as soon as this
   * scope aborts, whichever comes first. Operations that ignore their signal
   * cannot hold a caller past its deadline.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.aborted) {
      promise.catch(noop);
      return rejectSoon(this.reason);
    }
    if (!this.abortable) return promise;
    return new Promise<T>((resolve, reject) => {
      if (this.hook === undefined) {
        this.hook = reject;
        promise.then(
          (value) => {
            this.hook = undefined;
            resolve(value);
          },
          (error: unknown) => {
            this.hook = undefined;
            reject(error);
          },
        );
      } else {
        const stop = this.onAbort(reject);
        promise.then(
          (value) => {
            stop();
            resolve(value);
          },
          (error: unknown) => {
            stop();
            reject(error);
          },
        );
      }
    });
  }

  /** Resolves after `ms`, or rejects with the abort reason if this scope aborts first. */
  sleep(ms: number): Promise<void> {
    if (this.aborted) return rejectSoon(this.reason);
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const stop = this.onAbort((reason) => {
        timer.cancel();
        reject(reason);
      });
      const timer = this.clock.setTimer(() => {
        stop();
        resolve();
      }, ms);
    });
  }

  private adopt(child: Scope): void {
    if (this.aborted) {
      child.abort(this.reason);
      return;
    }
    if (!this.abortable) return;
    const children = (this.children ??= []);
    child.indexInParent = children.length;
    children.push(child);
  }
}

function noop(): void {}
