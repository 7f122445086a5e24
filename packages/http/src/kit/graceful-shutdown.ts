/**
 * Graceful shutdown. On SIGTERM or SIGINT (or `app.shutdown.begin()`):
 *
 * 1. draining starts: readiness answers 503 at once, and new requests on
 *    connections still open get 503 `shutting-down` with `Connection: close`;
 * 2. `fastify.close()` stops accepting connections, closes idle keep-alive
 *    ones, and waits for in-flight requests to finish, for at most
 *    `drainTimeoutMs`, after which the remaining connections are cut;
 * 3. the registered closers (pools, consumers, ...) run one by one in reverse
 *    order of registration, each bounded by `closerTimeoutMs`;
 * 4. the process exits: 0 when everything drained and closed, 1 otherwise.
 *
 * Closers also run when something else calls `fastify.close()`; only the
 * signal path exits the process.
 */
import type { FastifyInstance } from 'fastify';
import type { DrainState } from './request-tracking.js';

export interface GracefulShutdownOptions {
  /** Signals that start a shutdown. Default `['SIGTERM', 'SIGINT']`; `[]` installs no handler. */
  signals?: readonly NodeJS.Signals[];
  /** Longest wait for in-flight requests before connections are cut. Default 10 000 ms. */
  drainTimeoutMs?: number;
  /** Longest wait for one closer. Default 5 000 ms. */
  closerTimeoutMs?: number;
  /** Ends the process after a signal-started shutdown. Default `process.exit`. */
  exit?: (code: number) => void;
}

/** A closer: releases one resource (a pool, a consumer) after the server has drained. */
export type Closer = () => unknown;

/**
 * The shutdown controls the kit decorates the instance with (`app.shutdown`).
 *
 * @example
 * ```ts
 * app.shutdown.addCloser('postgres', () => store.close());
 * app.shutdown.addCloser('consumer', () => consumer.stop()); // closed first: reverse order
 * ```
 */
export interface Shutdown {
  /** True from the moment draining starts. */
  readonly draining: boolean;
  /** Registers a closer; closers run in reverse order of registration. */
  addCloser(name: string, closer: Closer): void;
  /** Starts the shutdown (as a signal would) and resolves with the exit code once it is done. Idempotent. */
  begin(reason?: string): Promise<number>;
}

/** Installs graceful shutdown on `fastify` and decorates it with `shutdown`. */
export function installGracefulShutdown(fastify: FastifyInstance, state: DrainState, options: GracefulShutdownOptions = {}): Shutdown {
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const closerTimeoutMs = options.closerTimeoutMs ?? 5_000;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const closers: [string, Closer][] = [];
  let drainCut = false;
  let closerFailed = false;
  let drainTimer: NodeJS.Timeout | undefined;
  let closing: Promise<number> | undefined;

  const shutdown: Shutdown = {
    get draining() {
      return state.draining;
    },
    addCloser(name, closer) {
      if (typeof closer !== 'function') throw new TypeError(`shutdown: closer "${name}" must be a function`);
      closers.push([name, closer]);
    },
    begin(reason = 'requested') {
      closing ??= (async () => {
        fastify.log.info({ reason }, 'shutdown: draining');
        state.draining = true;
        try {
          await fastify.close();
        } catch (error) {
          fastify.log.error({ err: error }, 'shutdown: close failed');
          return 1;
        }
        return drainCut || closerFailed ? 1 : 0;
      })();
      return closing;
    },
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    void shutdown.begin(signal).then((code) => {
      fastify.log.info({ code }, 'shutdown: done');
      exit(code);
    });
  };
  for (const signal of signals) process.once(signal, onSignal);

  fastify.addHook('preClose', function startDrain(done) {
    state.draining = true;
    drainTimer = setTimeout(() => {
      drainCut = true;
      fastify.log.warn({ drainTimeoutMs }, 'shutdown: drain bound reached, cutting remaining connections');
      fastify.server.closeAllConnections();
    }, drainTimeoutMs);
    drainTimer.unref();
    done();
  });

  // onClose hooks run after the server has closed (Fastify closes it in the first onClose hook to run).
  fastify.addHook('onClose', async function runClosers() {
    clearTimeout(drainTimer);
    for (const signal of signals) process.removeListener(signal, onSignal);
    for (const [name, closer] of closers.slice().reverse()) {
      try {
        await withTimeout(Promise.resolve().then(closer), closerTimeoutMs, name);
        fastify.log.info({ closer: name }, 'shutdown: closed');
      } catch (error) {
        closerFailed = true;
        fastify.log.error({ err: error, closer: name }, 'shutdown: closer failed');
      }
    }
  });

  return shutdown;
}

function withTimeout(promise: Promise<unknown>, ms: number, name: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`closer "${name}" did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
