/**
 * `inboundFaults`: applies the injector's inbound rules to the requests a
 * Fastify instance serves, in an `onRequest` hook — before the body is read
 * and before any handler runs.
 *
 * - **latency**: the request waits, then goes on to its handler. It goes on
 *   even if the caller gave up meanwhile, as a slow server's work would.
 * - **error**: answered at once with the rule's status as
 *   `application/problem+json` (type `https://bulwark.dev/problems/faults/injected`,
 *   header `x-bulwark-fault: <rule id>`); the handler never runs.
 * - **hang** / **partition**: no answer. The connection is reset after
 *   `hangMs`, or the request is dropped when the caller goes away; if the
 *   rule is removed first, the request goes on to its handler (the server
 *   "recovers").
 * - **reset**: the connection is reset at once (TCP RST): the caller sees
 *   `ECONNRESET` or a closed socket.
 * - **crash**: the process sends itself the rule's signal. `SIGKILL` ends it
 *   on the spot; after `SIGTERM` the request carries on and the process's
 *   own shutdown (drain, close) decides its fate.
 *
 * A request's module is the one whose prefix (from `modules`) is the longest
 * that its path falls under. Routes of `faultAdmin` are never faulted, nor
 * paths under an `exempt` prefix. Held requests are ended when the instance
 * closes, so a hang never holds up a shutdown. Register it after the kit and
 * the telemetry plugin, so injected answers are counted like real ones; it
 * is not encapsulated (its hook applies to the whole instance).
 *
 * @example
 * ```ts
 * await app.register(inboundFaults, { injector, modules: { payments: '/api/payments', orders: '/api/orders' } });
 * ```
 */
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { FaultOptionError, faultProblemTypes } from '../errors.js';
import type { AppliedFault, FaultInjector, LiftReason } from '../injector.js';

/** Route config key that keeps a route out of fault injection (`config: { [FAULTS_EXEMPT]: true }`). */
export const FAULTS_EXEMPT = Symbol.for('bulwark.faults.exempt');
/** Response header naming the rule behind an injected answer. */
export const FAULT_HEADER = 'x-bulwark-fault';
const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface InboundFaultsOptions {
  injector: FaultInjector;
  /** Module name -> path prefix (`{ payments: '/api/payments' }`), for `match.module`. Default: none. */
  modules?: Readonly<Record<string, string>>;
  /** Path prefixes never faulted (health checks, say). The admin routes never are, whatever this says. */
  exempt?: readonly string[];
}

interface Hold {
  /** Ends the hold early: `closed` resets a hung connection, `removed` lets the request go on. */
  end(reason: LiftReason): void;
}

/** The plugin; see the module comment. */
export function inboundFaults(app: FastifyInstance, options: InboundFaultsOptions, done: (error?: Error) => void): void {
  const injector = options.injector;
  let prefixes: [string, string][];
  let exempt: string[];
  // Refusals go to `done`: a plugin that throws would be an uncaught exception, not a failed registration.
  try {
    if (typeof (injector as { decide?: unknown } | undefined)?.decide !== 'function') throw new FaultOptionError('inboundFaults', 'injector', 'a FaultInjector', injector);
    prefixes = modulePrefixes(options.modules ?? {});
    exempt = prefixList(options.exempt ?? []);
  } catch (error) {
    return done(error as Error);
  }
  const clock = injector.clock;
  const holds = new Set<Hold>();
  let closing = false;

  app.addHook('onRequest', function injectFaults(request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction) {
    if (!injector.active) return next();
    if ((request.routeOptions.config as unknown as Record<symbol, unknown> | undefined)?.[FAULTS_EXEMPT] === true) return next();
    const url = request.raw.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (exempt.some((p) => underPrefix(path, p))) return next();
    const decision = injector.decide({ direction: 'inbound', module: moduleOf(prefixes, path), method: request.method, path });
    if (decision === undefined) return next();
    const { delayMs, fault } = decision;
    if (delayMs <= 0) return applyFault(fault, request, reply, next);
    // The delay: the request goes on afterwards even if the caller left (a slow server's work is done all the same).
    const hold: Hold = {
      end: () => {
        timer.cancel();
        holds.delete(hold);
        applyFault(fault, request, reply, next);
      },
    };
    const timer = clock.setTimer(() => hold.end('removed'), delayMs);
    holds.add(hold);
  });

  function applyFault(fault: AppliedFault | undefined, request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction): void {
    if (fault === undefined) return next();
    const rule = fault.rule;
    const socket = request.raw.socket as Socket | null;
    if (socket === null || socket.destroyed) return; // the caller is gone: nothing left to fault
    switch (rule.kind) {
      case 'latency':
        return next();
      case 'error': {
        const status = rule.status ?? 503;
        const body = {
          type: faultProblemTypes.injected,
          title: 'Injected fault',
          status,
          detail: `fault rule "${rule.id}" answered ${status}`,
          code: 'BULWARK_FAULT_INJECTED',
          rule: rule.id,
          requestId: request.id,
        };
        void reply.code(status).header('content-type', PROBLEM_CONTENT_TYPE).header(FAULT_HEADER, rule.id).send(JSON.stringify(body));
        return;
      }
      case 'reset':
        reply.hijack();
        resetSocket(socket);
        return;
      case 'crash':
        process.kill(process.pid, rule.signal ?? 'SIGKILL');
        // SIGKILL: nothing after this runs. SIGTERM: the process's own shutdown decides the request's fate.
        if (rule.signal === 'SIGTERM') return next();
        reply.hijack();
        return;
      case 'hang':
      case 'partition':
        return hang(fault, socket, reply, next);
    }
  }

  /** No answer until hangMs (reset), the caller leaving (dropped), or the rule's removal (the request goes on). */
  function hang(fault: AppliedFault, socket: Socket, reply: FastifyReply, next: HookHandlerDoneFunction): void {
    if (closing) return resetSocket(socket);
    const hangMs = fault.rule.hangMs;
    const finish = () => {
      timer?.cancel();
      reply.raw.removeListener('close', onClose);
      offLift();
      holds.delete(hold);
    };
    const onClose = () => finish();
    const hold: Hold = {
      end: (reason) => {
        finish();
        if (reason === 'removed' && !socket.destroyed) next();
        else resetSocket(socket);
      },
    };
    const timer = hangMs === undefined ? undefined : clock.setTimer(() => hold.end('closed'), hangMs);
    const offLift = fault.onLift((reason) => hold.end(reason));
    reply.raw.once('close', onClose);
    holds.add(hold);
  }

  // Nothing held outlives the instance: hung connections are reset, delayed requests go on now.
  app.addHook('preClose', (close) => {
    closing = true;
    for (const hold of [...holds]) hold.end('closed');
    close();
  });
  done();
}

// Not encapsulated: the hook applies to every route of the instance that registers it.
(inboundFaults as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(inboundFaults as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = '@bulwark/faults/inbound';

/** Resets the connection (RST where the platform can), so the caller sees ECONNRESET rather than a clean close. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  socket.on('error', () => undefined);
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

function modulePrefixes(modules: Readonly<Record<string, string>>): [string, string][] {
  if (typeof modules !== 'object' || modules === null || Array.isArray(modules)) throw new FaultOptionError('inboundFaults', 'modules', 'an object of module name -> path prefix', modules);
  const entries = Object.entries(modules).map(([name, prefix]): [string, string] => {
    if (typeof prefix !== 'string' || !prefix.startsWith('/')) throw new FaultOptionError('inboundFaults', `modules.${name}`, 'a path prefix starting with "/"', prefix);
    return [name, normalisePrefix(prefix)];
  });
  // Longest first: the most specific prefix wins.
  return entries.sort((a, b) => b[1].length - a[1].length);
}

function prefixList(list: readonly string[]): string[] {
  if (!Array.isArray(list)) throw new FaultOptionError('inboundFaults', 'exempt', 'an array of path prefixes', list);
  return list.map((p, i) => {
    if (typeof p !== 'string' || !p.startsWith('/')) throw new FaultOptionError('inboundFaults', `exempt[${i}]`, 'a path prefix starting with "/"', p);
    return normalisePrefix(p);
  });
}

const normalisePrefix = (prefix: string): string => (prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix);

function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47 /* / */);
}

function moduleOf(prefixes: readonly [string, string][], path: string): string | undefined {
  for (const [name, prefix] of prefixes) if (underPrefix(path, prefix)) return name;
  return undefined;
}
