import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseCli, UsageError } from './cli.js';
import { LoadPlanError } from './load.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', 'tools/load/cli.ts', ...args], { cwd: root, env: { ...process.env, SHOP_INTERNAL_KEY: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('load CLI', () => {
  it('parses rate and duration, phases, workloads and bounds', () => {
    const a = parseCli(['--target=http://127.0.0.1:3000', '--rate=100', '--duration=30s'], {});
    assert.deepEqual(a.phases, [{ name: 'steady', durationMs: 30_000, rate: 100 }]);
    assert.deepEqual(a.workload, { type: 'shop' });
    const b = parseCli(['--phases=warm:10s@50,ramp:20s@200..400', '--workload=get:/health/ready', '--max-in-flight=50', '--timeout=2s', '--json'], {});
    assert.deepEqual(b.phases, [
      { name: 'warm', durationMs: 10_000, rate: 50 },
      { name: 'ramp', durationMs: 20_000, rate: 200, rateTo: 400 },
    ]);
    assert.deepEqual(b.workload, { type: 'get', path: '/health/ready' });
    assert.equal(b.maxInFlight, 50);
    assert.equal(b.timeoutMs, 2000);
    assert.equal(b.json, true);
    const c = parseCli(['--rate=5', '--mix=placeOrder:1,browse:2', '--payments=card_ok:9,card_declined:1', '--restock=100'], { SHOP_INTERNAL_KEY: 'k' });
    assert.deepEqual(c.mix, { placeOrder: 1, browse: 2 });
    assert.deepEqual(c.payments, { card_ok: 9, card_declined: 1 });
    assert.equal(c.internalKey, 'k');
  });

  it('refuses bad command lines', () => {
    for (const args of [[], ['--rate=x'], ['--rate=1', '--phases=a:1s@1'], ['--rate=1', '--bogus=1'], ['--rate=1', '--workload=post:/x'], ['--rate=1', '--mix=nope:1'], ['--rate=1', '--restock=5'], ['--rate=1', '--duration=soon']]) {
      assert.throws(() => parseCli(args, {}), UsageError, args.join(' '));
    }
    assert.throws(() => parseCli(['--phases=a:1s'], {}), LoadPlanError);
  });

  it('runs a GET workload, and prints a table then one JSON line last', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const { code, stdout, stderr } = await run([`--target=http://127.0.0.1:${port}`, '--phases=a:500ms@20,b:500ms@40', '--workload=get:/x', '--interval=250ms']);
      assert.equal(code, 0, stderr);
      const lines = stdout.trim().split('\n');
      const figures = JSON.parse(lines.at(-1)!) as Record<string, number | string>;
      assert.equal(figures.tool, 'load');
      assert.equal(figures.workload, 'get:/x');
      assert.equal(figures.a_scheduled, 10);
      assert.equal(figures.b_scheduled, 20);
      assert.equal(figures.ok, 30);
      assert.ok(stdout.includes('| a |') && stdout.includes('| **total** |'));
      assert.match(stderr, /phase 1\/2 a .*offered .*achieved .*errors 0 .*in-flight \d+ .*p99/);
    } finally {
      server.close();
    }
  });

  it('exits 2 on a target that is not loopback, sending nothing', async () => {
    const { code, stderr, stdout } = await run(['--target=http://10.0.0.1:3000', '--rate=10', '--workload=get:/']);
    assert.equal(code, 2);
    assert.match(stderr, /not a loopback address/);
    assert.equal(stdout, '');
  });
});
