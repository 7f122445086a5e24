/**
 * A monolith shop in a child process (`apps/shop/src/main.ts`), in a temp
 * data dir, on a free loopback port, with telemetry on and a random internal
 * key: the target of `npm run scenario -- --start-shop` and of the
 * `payments-outage` experiment. A process of its own, so the load generator
 * and the shop do not share an event loop (as with a real target).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ShopProcess {
  url: string;
  internalKey: string;
  dataDir: string;
  pid: number;
  /** What the process wrote to stderr (the last 64 KiB). */
  stderr(): string;
  /** SIGTERM (graceful: drains, closes stores), SIGKILL after `graceMs`; then removes the data dir. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export interface ShopProcessOptions {
  /** Extra `SHOP_*` configuration (e.g. `{ SHOP_PAYMENTS__LATENCY_MS: '5' }`). The parent's `SHOP_*` variables are not passed on. */
  env?: Record<string, string>;
  /** How long to wait for the shop to be ready. Default 60 s. */
  readyTimeoutMs?: number;
}

export async function startShopProcess(options: ShopProcessOptions = {}): Promise<ShopProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bulwark-scenario-shop-'));
  const internalKey = randomBytes(16).toString('hex');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SHOP_') && v !== undefined) env[k] = v;
  Object.assign(env, {
    NODE_ENV: 'production',
    SHOP_DATA_DIR: dataDir,
    SHOP_HOST: '127.0.0.1',
    SHOP_PORT: '0',
    SHOP_INTERNAL_KEY: internalKey,
    SHOP_LOG_LEVEL: 'warn',
    SHOP_TELEMETRY__ENABLED: 'true',
    ...options.env,
  });
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', join(ROOT, 'apps/shop/src/main.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-65_536);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A parent that exits (or is killed by a signal it handles) takes the shop with it.
  const onExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  let closed = false;
  const close = async (graceMs = 15_000): Promise<void> => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the shop was not ready within ${options.readyTimeoutMs ?? 60_000} ms`)), options.readyTimeoutMs ?? 60_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        out = (out + chunk.toString()).slice(-65_536);
        const m = /ready in \d+ ms on (http:\/\/\S+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the shop exited before it was ready (${signal ?? `code ${code}`}): ${err.trim().split('\n').slice(-5).join('\n')}`));
      });
    });
    child.stdout?.resume();
    return { url, internalKey, dataDir, pid: child.pid ?? 0, stderr: () => err, close };
  } catch (error) {
    await close(2_000);
    throw error;
  }
}
