/**
 * Broker restarts, against a private nats-server this file starts on a free
 * port with its own store directory, so the shared server (and every test
 * using it) is never touched. Needs the `nats-server` binary (Debian's
 * package installs /usr/sbin/nats-server; or set NATS_SERVER_BIN).
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryLog, testEnvelope } from '../../testing/index.js';
import { connectNatsTransport, type NatsTransport } from './index.js';

function findServerBinary(): string {
  const candidates = [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'nats-server'))];
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '') continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('NATS: the nats-server binary was not found (install the nats-server package or set NATS_SERVER_BIN)');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

async function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** A nats-server with JetStream, private to this file. */
class PrivateNatsServer {
  private child: ChildProcess | undefined;
  constructor(
    private readonly binary: string,
    readonly port: number,
    private readonly storeDir: string,
  ) {}

  async start(): Promise<void> {
    const child = spawn(this.binary, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir], { stdio: 'ignore' });
    this.child = child;
    const deadline = Date.now() + 10_000;
    while (!(await reachable(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`NATS: private nats-server on port ${this.port} did not start`);
      await sleep(50);
    }
  }

  /** Kills the server the hard way (a crash, not a shutdown). */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
}

describe('NATS transport across a broker restart', () => {
  let server: PrivateNatsServer;
  let storeDir: string;
  let transport: NatsTransport | undefined;

  before(async () => {
    storeDir = await mkdtemp(join(tmpdir(), 'bulwark-nats-'));
    server = new PrivateNatsServer(findServerBinary(), await freePort(), storeDir);
    await server.start();
  });

  after(async () => {
    await transport?.close();
    await server?.kill();
    await rm(storeDir, { recursive: true, force: true });
  });

  it('resumes consuming, and publishing, once the broker is back', async (ctx) => {
    const errors: string[] = [];
    transport = await connectNatsTransport({
      servers: `127.0.0.1:${server.port}`,
      requestTimeoutMs: 2_000,
      pullExpiresMs: 2_000,
      onError: (error, { operation }) => errors.push(`${operation}: ${String(error)}`),
      connection: { reconnectTimeWait: 200 },
    });
    const t = transport;
    const topic = `restart.${randomUUID().slice(0, 8)}`;
    let killed!: () => void;
    const down = new Promise<void>((resolve) => (killed = resolve));
    // The first delivery's handler is still running when the broker dies: its ack fails, so it throws.
    const acked = new Set<string>();
    const log = new DeliveryLog(async (d) => {
      if (d.deliveryCount === 1 && d.envelope?.payload === 'before') await down;
      await d.ack();
      acked.add(d.envelope!.id);
    });
    const sub = await t.subscribe(topic, 'survivors', log.handler, { ackWaitMs: 2_000 });
    const before = testEnvelope('k', 'before');
    await t.publish(topic, before);
    await log.waitFor(1);

    await server.kill();
    killed();
    await sleep(4_000); // down longer than a pull and an API timeout
    await server.start();

    // The first publishes may fail while the client reconnects and JetStream recovers.
    const afterRestart = testEnvelope('k', 'after');
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await t.publish(topic, afterRestart);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
    const deadlineForDelivery = Date.now() + 30_000;
    const delivered = (id: string): boolean => acked.has(id);
    while (!(delivered(before.id) && delivered(afterRestart.id)) && Date.now() < deadlineForDelivery) await sleep(50);
    for (const e of errors) ctx.diagnostic(`survived ${e}`);
    assert.ok(errors.some((e) => e.startsWith('handler:')), 'the handler whose ack failed was reported');
    // The unacked message comes back, and the new one arrives; nothing else.
    assert.ok(delivered(before.id), `redelivered after the restart: ${log.ids().join(', ')}`);
    assert.ok(delivered(afterRestart.id), `delivered after the restart: ${log.ids().join(', ')}`);
    assert.deepEqual(new Set(log.ids()), new Set([before.id, afterRestart.id]));
    await sub.stop();
  });
});
