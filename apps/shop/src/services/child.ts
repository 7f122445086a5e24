/**
 * A process of the services topology, forked by the launcher: one shop module
 * on its own kit service (`hostModules` with that module only), or the
 * gateway. It is told what to be over IPC (`protocol.ts`), and stops cleanly
 * — drains requests, stops background work, closes its store and broker
 * connection, exits 0 — on `stop`, on SIGTERM/SIGINT, and when the launcher
 * goes away (the IPC channel closes), so no process outlives its launcher.
 */
import { createGateway, type Gateway } from '@bulwark/gateway';
import { hostModules, type ModuleHost } from '../shop.js';
import type { FromChild, ToChild } from './protocol.js';

const STOP_GRACE_MS = 10_000;

let host: ModuleHost | undefined;
let gateway: Gateway | undefined;
let stopping: Promise<void> | undefined;

function send(message: FromChild): void {
  if (process.connected) process.send?.(message);
}

function stop(): Promise<void> {
  stopping ??= (async () => {
    const guard = setTimeout(() => {
      process.stderr.write(`shop service ${String(process.pid)}: did not stop within ${STOP_GRACE_MS} ms, exiting\n`);
      process.exit(1);
    }, STOP_GRACE_MS);
    guard.unref();
    try {
      await gateway?.close(2_000);
      await host?.close();
    } finally {
      clearTimeout(guard);
      process.exit(0);
    }
  })();
  return stopping;
}

async function handle(message: ToChild): Promise<void> {
  switch (message.kind) {
    case 'host': {
      const { module, config } = message;
      const port = config.modules[module].url === '' ? 0 : Number(new URL(config.modules[module].url).port);
      host = await hostModules(config, { modules: [module], port, serviceName: `shop-${module === 'productPage' ? 'product-page' : module}` });
      send({ kind: 'listening', url: host.url });
      return;
    }
    case 'connect':
      if (host === undefined) throw new Error('connect before host');
      await host.connect(message.urls);
      send({ kind: 'ready' });
      return;
    case 'gateway': {
      gateway = await createGateway({ config: message.config, reloadOnSighup: false });
      const { port } = await gateway.listen();
      const raw = message.config as { listen?: { host?: string } };
      send({ kind: 'listening', url: `http://${raw.listen?.host ?? '127.0.0.1'}:${port}` });
      send({ kind: 'ready' });
      return;
    }
    case 'stop':
      await stop();
      return;
  }
}

process.on('message', (message: ToChild) => {
  handle(message).catch((error: unknown) => {
    send({ kind: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    void stop();
  });
});
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
