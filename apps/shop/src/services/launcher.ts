/**
 * The services topology: one process per module plus the gateway, started and
 * stopped as one set.
 *
 * Start-up: every module process is forked at once (`child.ts`), builds its
 * module — its store a PostgreSQL schema named after the module, its events
 * over NATS JetStream or RabbitMQ — and listens (on `modules.<name>.url`'s
 * port, else a free one); once all listen, each is told every module's URL
 * (module-to-module calls go directly to the callee's process) and starts its
 * background work (relay, consumer, sweeper, saga orchestrator); then the
 * gateway process starts with a configuration generated from those URLs
 * (`gateway-config.ts`) on `host:port` — the set's public entry point.
 *
 * Stop: the gateway first (no new requests), then the modules that call or
 * consume (product page, orders, notifications), then the rest; each drains,
 * closes its store and broker connection and exits 0. A process that does not
 * exit within the grace period is killed. The children also stop by
 * themselves if the launcher dies (their IPC channel closes), so none
 * outlives it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MODULES, type ModuleName, type ShopConfig } from '../config.js';
import { prefixOf } from '../modules/module.js';
import { gatewayConfig } from './gateway-config.js';
import type { FromChild, ToChild } from './protocol.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const STOP_TIMEOUT_MS = 15_000;
/** Stop order after the gateway: callers and consumers first, then what they call. */
const STOP_TIERS: readonly (readonly ModuleName[])[] = [
  ['productPage', 'orders', 'notifications'],
  ['recommendations', 'payments', 'inventory', 'catalog', 'users'],
];

export interface ServicesSet {
  readonly config: ShopConfig;
  /** The gateway: the set's public entry point, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** Each module's base URL on its own process, e.g. `http://127.0.0.1:40123/api/orders`. */
  readonly modules: Readonly<Record<ModuleName, string>>;
  /** Process id of each child (`gateway` and the modules). */
  readonly pids: Readonly<Record<ModuleName | 'gateway', number>>;
  /** Milliseconds from `startServices` to ready. */
  readonly startupMs: number;
  /** Resolves when a child exits without being asked to (name, exit code, signal). */
  readonly crashed: Promise<{ name: string } & ChildExit>;
  /** Stops every process (gateway first) and resolves once all have exited, with how each exited; idempotent. */
  stop(): Promise<Record<string, ChildExit>>;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  stopping = false;
  private readonly inbox: FromChild[] = [];
  private readonly waiters: { kind: FromChild['kind']; resolve: (m: FromChild) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;

  constructor(readonly name: string) {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    this.process = fork(CHILD, [], {
      execArgv: ['--import', import.meta.resolve('tsx'), '--conditions=bulwark:source'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Its own process group: a Ctrl-C in the terminal reaches the launcher only, which stops the set in order.
      detached: true,
      env,
    });
    this.exited = new Promise((resolve) => this.process.once('exit', (code, signal) => resolve({ code, signal })));
    this.process.on('message', (message: FromChild) => {
      if (message.kind === 'failed') return this.fail(new Error(`${name}: ${message.error}`));
      const i = this.waiters.findIndex((w) => w.kind === message.kind);
      if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(message);
      else this.inbox.push(message);
    });
    this.process.on('error', (error) => this.fail(new Error(`${name}: ${error.message}`)));
    void this.exited.then(({ code, signal }) => this.fail(new Error(`${name} exited (${signal ?? `code ${String(code)}`})`)));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  send(message: ToChild): void {
    if (this.process.connected) this.process.send(message);
  }

  expect<K extends FromChild['kind']>(kind: K, timeoutMs: number): Promise<Extract<FromChild, { kind: K }>> {
    const i = this.inbox.findIndex((m) => m.kind === kind);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Extract<FromChild, { kind: K }>);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const w = this.waiters.findIndex((x) => x.resolve === done);
        if (w >= 0) this.waiters.splice(w, 1);
        reject(new Error(`${this.name}: not ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (m: FromChild) => {
        clearTimeout(timer);
        resolve(m as Extract<FromChild, { kind: K }>);
      };
      this.waiters.push({ kind, resolve: done, reject: (e) => (clearTimeout(timer), reject(e)) });
    });
  }

  /** Asks it to stop; kills it if it has not exited after `STOP_TIMEOUT_MS`. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    if (this.process.connected) this.send({ kind: 'stop' });
    else this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts the set described by `config` (`topology: "services"`); rejects, with nothing left running, if any process fails to start. */
export async function startServices(config: ShopConfig): Promise<ServicesSet> {
  if (config.topology !== 'services') throw new Error(`startServices needs topology "services", got "${config.topology}"`);
  const began = performance.now();
  const timeoutMs = config.services.startTimeoutMs;
  const modules = new Map<ModuleName, Child>(MODULES.map((m) => [m, new Child(m)]));
  let gateway: Child | undefined;
  const all = () => [...modules.values(), ...(gateway === undefined ? [] : [gateway])];

  let stopping: Promise<Record<string, ChildExit>> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (gateway !== undefined) await gateway.stop();
      for (const tier of STOP_TIERS) await Promise.all(tier.map((m) => modules.get(m)?.stop() ?? Promise.resolve()));
      await Promise.all(all().map((c) => c.stop()));
      return Object.fromEntries(await Promise.all(all().map(async (c) => [c.name, await c.exited] as const)));
    })());

  try {
    for (const [module, child] of modules) child.send({ kind: 'host', module, config });
    const origins = Object.fromEntries(await Promise.all(MODULES.map(async (m) => [m, (await (modules.get(m) as Child).expect('listening', timeoutMs)).url] as const))) as Record<ModuleName, string>;
    const urls = Object.fromEntries(MODULES.map((m) => [m, `${origins[m]}${prefixOf(m)}`])) as Record<ModuleName, string>;
    for (const child of modules.values()) child.send({ kind: 'connect', urls });
    await Promise.all([...modules.values()].map((c) => c.expect('ready', timeoutMs)));

    gateway = new Child('gateway');
    gateway.send({ kind: 'gateway', config: gatewayConfig(config, origins) });
    const { url } = await gateway.expect('listening', timeoutMs);
    await gateway.expect('ready', timeoutMs);

    const children = all();
    const crashed = Promise.race(children.map((c) => c.exited.then((e) => (c.stopping ? new Promise<never>(() => undefined) : { name: c.name, ...e }))));
    const pids = Object.fromEntries(children.map((c) => [c.name, c.process.pid ?? -1])) as Record<ModuleName | 'gateway', number>;
    return { config, url, modules: urls, pids, startupMs: Math.round(performance.now() - began), crashed, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
