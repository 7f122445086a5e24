import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { fixedWindow, leakyBucket, MemoryRateLimitStore, slidingWindow, tokenBucket, type RateLimitRule } from '@bulwark/resilience';
import { isRateLimitStoreUnavailableError, RedisRateLimitStore } from './index.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const fixture = fileURLToPath(new URL('../../test/fixtures/rate-limit-server.ts', import.meta.url));
const HOUR = 3_600_000;

async function requireRedis(redis: Redis): Promise<void> {
  try {
    await redis.ping();
  } catch (error) {
    throw new Error(`Redis is required by these tests and is unreachable at 127.0.0.1:6379: ${(error as Error).message}`);
  }
}

describe('RedisRateLimitStore (real Redis)', () => {
  let redis: Redis;
  let prefix: string;

  before(async () => {
    redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1, connectTimeout: 3_000 });
    await requireRedis(redis);
    prefix = `test:${randomUUID()}:`;
  });
  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('decides as the memory store does, for every algorithm (slow refills, so time passing changes nothing)', async () => {
    const store = new RedisRateLimitStore({ redis, prefix });
    const memory = new MemoryRateLimitStore();
    const rules: RateLimitRule[] = [
      tokenBucket({ capacity: 5, refillRate: 1, refillIntervalMs: HOUR }),
      leakyBucket({ capacity: 5, drainRate: 1, drainIntervalMs: HOUR }),
      slidingWindow({ limit: 5, windowMs: 24 * HOUR }),
      fixedWindow({ limit: 5, windowMs: 24 * HOUR }),
    ];
    const costs = [1, 2, 0, 1, 3, 1, 1, 6];
    for (const rule of rules) {
      for (const cost of costs) {
        const [r, m] = [await store.take(`parity:${rule.algorithm}`, rule, cost), memory.take(`parity:${rule.algorithm}`, rule, cost)];
        const label = `${rule.algorithm} cost ${cost}`;
        assert.equal(r.allowed, m.allowed, label);
        assert.equal(r.limit, m.limit, label);
        assert.equal(r.remaining, m.remaining, label);
        assert.equal(r.retryAfterMs === Infinity, m.retryAfterMs === Infinity, label);
        // Whole-window figures may differ by the milliseconds between the two calls and the windows' alignment.
        assert.equal(r.resetMs > 0, m.resetMs > 0, label);
        assert.equal(r.retryAfterMs > 0, m.retryAfterMs > 0, label);
        assert.equal(r.delayMs > 0, m.delayMs > 0, label);
        if (rule.algorithm === 'token-bucket' || rule.algorithm === 'leaky-bucket') {
          // Buckets do not align to the clock: the figures agree up to the time between the two calls.
          for (const field of ['resetMs', 'retryAfterMs', 'delayMs'] as const) {
            if (Number.isFinite(m[field])) assert.ok(Math.abs(r[field] - m[field]) <= 1_000, `${label}: ${field} ${r[field]} vs ${m[field]}`);
          }
        }
      }
    }
    const ttl = await redis.pttl(`${prefix}token-bucket:parity:token-bucket`);
    assert.ok(ttl > 0 && ttl <= 5 * HOUR + 1_000, `keys expire once restored (pttl ${ttl})`);
  });

  it('falls back to EVAL when the script cache was flushed', async () => {
    const store = new RedisRateLimitStore({ redis, prefix });
    const rule = tokenBucket({ capacity: 2, refillRate: 1, refillIntervalMs: HOUR });
    assert.equal((await store.take('flush', rule, 1)).remaining, 1);
    await redis.script('FLUSH');
    assert.equal((await store.take('flush', rule, 1)).remaining, 0);
    assert.equal((await store.take('flush', rule, 1)).allowed, false);
  });

  it('fails fast, without queueing, while Redis is unreachable', async () => {
    const dead = new Redis({ host: '127.0.0.1', port: 1, maxRetriesPerRequest: 0, retryStrategy: () => 60_000, lazyConnect: false });
    dead.on('error', () => undefined);
    while (dead.status !== 'reconnecting') await new Promise((resolve) => setTimeout(resolve, 5));
    const store = new RedisRateLimitStore({ redis: dead });
    await assert.rejects(store.take('k', tokenBucket({ capacity: 1, refillRate: 1 }), 1), (e: unknown) => isRateLimitStoreUnavailableError(e));
    dead.disconnect();
  });

  it('two processes sharing Redis admit at most the configured limit in a window', async () => {
    for (const rule of [tokenBucket({ capacity: 25, refillRate: 1, refillIntervalMs: 24 * HOUR }), slidingWindow({ limit: 25, windowMs: 24 * HOUR })]) {
      const runPrefix = `${prefix}${rule.algorithm}:procs:`;
      const children: ChildProcess[] = [];
      try {
        const ports = await Promise.all(
          [0, 1].map(async () => {
            const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', fixture, JSON.stringify(rule), runPrefix], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
            children.push(child);
            const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
            return (JSON.parse(line) as { port: number }).port;
          }),
        );
        const statuses = await Promise.all(
          Array.from({ length: 120 }, async (_, i) => {
            const res = await request(`http://127.0.0.1:${ports[i % 2]}/limited`);
            await res.body.dump();
            return res.statusCode;
          }),
        );
        assert.equal(statuses.filter((s) => s === 200).length, 25, `${rule.algorithm}: exactly the limit admitted across both processes`);
        assert.equal(statuses.filter((s) => s === 429).length, 95);
      } finally {
        for (const child of children) {
          child.kill('SIGTERM');
          if (child.exitCode === null) await once(child, 'exit');
        }
      }
    }
  });
});
