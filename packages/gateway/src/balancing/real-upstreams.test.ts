/**
 * The upstream layer against real upstream processes: small node:http
 * servers in child processes, driven through a tiny forwarder written here
 * (undici, `pick` → request → `done`), the way the proxy uses the layer.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { VirtualClock, seededRandom } from '@bulwark/resilience/testing';
import { Agent, request } from 'undici';
import { createUpstream, type Upstream, type UpstreamOptions } from './index.js';
import { httpCheck } from './upstream.js';
import type { AttemptOutcome } from './types.js';

// A server whose behaviour is set at start (env) and at run time (GET /admin?status=500&delay=40&health=503).
const SERVER = `
const http = require('node:http');
const mode = { status: Number(process.env.STATUS || 200), delay: Number(process.env.DELAY || 0), health: 200 };
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/health')) { res.statusCode = mode.health; res.end('health'); return; }
  if (req.url.startsWith('/admin')) {
    for (const [k, v] of new URL(req.url, 'http://x').searchParams) mode[k] = Number(v);
    res.end('ok'); return;
  }
  const send = () => { res.statusCode = mode.status; res.end(process.env.NAME); };
  if (mode.delay > 0) setTimeout(send, mode.delay); else send();
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
`;

interface Server {
  name: string;
  url: string;
  process: ChildProcess;
  set(mode: { status?: number; delay?: number; health?: number }): Promise<void>;
  kill(): Promise<void>;
}

const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
const children: ChildProcess[] = [];

async function startServer(name: string, env: { STATUS?: string; DELAY?: string } = {}): Promise<Server> {
  const child = spawn(process.execPath, ['-e', SERVER], { env: { ...process.env, NAME: name, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`upstream ${name} exited with ${code}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  const url = `http://127.0.0.1:${port}`;
  return {
    name,
    url,
    process: child,
    async set(mode) {
      const q = new URLSearchParams(Object.entries(mode).map(([k, v]): [string, string] => [k, String(v)])).toString();
      const r = await request(`${url}/admin?${q}`, { dispatcher: agent });
      await r.body.dump();
    },
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** The test's forwarder: `total` requests, `concurrency` at a time; counts answers per instance. */
async function drive(upstream: Upstream, total: number, concurrency: number): Promise<{ byInstance: Map<string, number>; outcomes: Record<AttemptOutcome | 'none', number> }> {
  const byInstance = new Map<string, number>();
  const outcomes = { success: 0, 'server-error': 0, 'gateway-error': 0, none: 0 };
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++;
      const lease = upstream.pick();
      if (lease === undefined) {
        outcomes.none++;
        continue;
      }
      byInstance.set(lease.instance.id, (byInstance.get(lease.instance.id) ?? 0) + 1);
      const t0 = performance.now();
      let outcome: AttemptOutcome;
      try {
        const response = await request(`${lease.instance.url}/work`, { dispatcher: agent, headersTimeout: 10_000 });
        await response.body.dump();
        outcome = response.statusCode >= 500 ? 'server-error' : 'success';
      } catch {
        outcome = 'gateway-error';
      }
      lease.done(outcome, performance.now() - t0);
      outcomes[outcome]++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { byInstance, outcomes };
}

after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await agent.close();
});

describe('with real upstream processes', () => {
  let servers: Server[] = [];
  before(async () => {
    servers = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startServer(n)));
  });
  const reset = () => Promise.all(servers.map((s) => s.set({ status: 200, delay: 0, health: 200 })));
  const make = (options: Partial<UpstreamOptions>, clock = new VirtualClock()) =>
    createUpstream({ name: 'svc', instances: servers.slice(0, 3).map((s) => s.url), clock, ...options });

  it('ejects an instance answering 5xx within the configured failures, and traffic shifts to the others', async () => {
    await reset();
    const clock = new VirtualClock();
    const upstream = make({ outlierEjection: { consecutiveErrors: 3, baseEjectionMs: 10_000 } }, clock);
    const bad = servers[1]!;
    await bad.set({ status: 503 });
    const first = await drive(upstream, 30, 1);
    assert.equal(first.byInstance.get(bad.url), 3, 'the bad instance got exactly its 3 failures');
    assert.equal(first.outcomes['server-error'], 3);
    assert.equal(upstream.status()[1]!.ejected, true);
    const next = await drive(upstream, 200, 8);
    assert.equal(next.byInstance.get(bad.url), undefined, 'no traffic while ejected');
    assert.equal(next.outcomes.success, 200);
    // back after the ejection time; still failing → ejected again, for twice as long
    await clock.advance(10_000);
    assert.equal(upstream.status()[1]!.ejected, false);
    const third = await drive(upstream, 30, 1);
    assert.equal(third.byInstance.get(bad.url), 3);
    assert.equal(upstream.status()[1]!.ejections, 2);
    await clock.advance(10_000);
    assert.equal(upstream.status()[1]!.ejected, true, 'second ejection lasts 2 × base');
    // recovered instance returns and takes its share again
    await bad.set({ status: 200 });
    await clock.advance(10_000);
    const last = await drive(upstream, 300, 1);
    assert.equal(last.byInstance.get(bad.url), 100);
    await upstream.close();
  });

  it('ejects an instance that refuses connections (gateway errors)', async () => {
    await reset();
    const doomed = await startServer('doomed');
    const upstream = createUpstream({
      name: 'svc',
      instances: [servers[0]!.url, doomed.url],
      clock: new VirtualClock(),
      outlierEjection: { consecutiveErrors: 2, maxEjectionPercent: 50 },
    });
    await doomed.kill();
    const run = await drive(upstream, 50, 1);
    assert.equal(run.outcomes['gateway-error'], 2);
    assert.equal(run.outcomes.success, 48);
    assert.equal(upstream.status()[1]!.ejected, true);
    await upstream.close();
  });

  it('never ejects beyond maxEjectionPercent even when every instance fails', async () => {
    await reset();
    await Promise.all(servers.map((s) => s.set({ status: 500 })));
    const upstream = createUpstream({
      name: 'svc',
      instances: servers.map((s) => s.url),
      clock: new VirtualClock(),
      outlierEjection: { consecutiveErrors: 2, maxEjectionPercent: 25 },
    });
    const run = await drive(upstream, 200, 4);
    assert.equal(run.outcomes.none, 0, 'requests still find an instance');
    assert.equal(upstream.status().filter((s) => s.ejected).length, 1, 'floor(4 × 25%) = 1');
    await upstream.close();
    await reset();
  });

  it('a slow instance gets fewer requests under P2C than under round-robin', async () => {
    await reset();
    const slow = servers[0]!;
    await slow.set({ delay: 30 });
    const share = async (balancer: 'round-robin' | 'p2c'): Promise<number> => {
      const upstream = createUpstream({ name: 'svc', instances: servers.map((s) => s.url), balancer, random: seededRandom(3), clock: new VirtualClock() });
      const run = await drive(upstream, 800, 8);
      await upstream.close();
      assert.equal(run.outcomes.success, 800);
      return (run.byInstance.get(slow.url) ?? 0) / 800;
    };
    const rr = await share('round-robin');
    const p2c = await share('p2c');
    assert.equal(rr, 0.25, 'round-robin ignores latency');
    assert.ok(p2c < rr / 4, `P2C sent ${(p2c * 100).toFixed(1)} % to the slow instance (round-robin ${(rr * 100).toFixed(1)} %)`);
    await reset();
  });

  it('active HTTP health checks against a real /health endpoint, on a virtual clock', async () => {
    await reset();
    const clock = new VirtualClock();
    // The real HTTP check, watched: a round is over when the timer's checks have all answered.
    let inflight: Promise<boolean>[] = [];
    const check = (instance: { url: string }, signal: AbortSignal): Promise<boolean> => {
      const answer = httpCheck(`${instance.url}/health`, signal);
      inflight.push(answer);
      return answer;
    };
    const upstream = make({ clock, healthCheck: { path: '/health', intervalMs: 5_000, timeoutMs: 60_000, healthyThreshold: 2, unhealthyThreshold: 2, check } }, clock);
    await upstream.ready();
    assert.deepEqual(upstream.status().map((s) => s.health), ['healthy', 'healthy', 'healthy']);
    const sick = servers[2]!;
    await sick.set({ health: 503 });
    /** Exactly one round, started by the interval timer (not by the test: that could add a second round). */
    const round = async (): Promise<void> => {
      inflight = [];
      await clock.advance(5_000);
      while (inflight.length < 3) await new Promise((resolve) => setImmediate(resolve)); // make() uses 3 instances
      await Promise.allSettled(inflight);
      await new Promise((resolve) => setImmediate(resolve));
    };
    await round();
    assert.equal(upstream.status()[2]!.health, 'healthy', 'one failure is below the threshold');
    await round();
    assert.equal(upstream.status()[2]!.health, 'unhealthy');
    const run = await drive(upstream, 60, 4);
    assert.equal(run.byInstance.get(sick.url), undefined);
    await sick.set({ health: 200 });
    await round();
    await round();
    assert.equal(upstream.status()[2]!.health, 'healthy');
    const back = await drive(upstream, 60, 1);
    assert.equal(back.byInstance.get(sick.url), 20);
    // an instance that is gone fails its checks
    const gone = await startServer('gone');
    const withGone = createUpstream({ name: 'svc', instances: [gone.url], clock, healthCheck: { intervalMs: 5_000, timeoutMs: 60_000 } });
    await gone.kill();
    await withGone.ready();
    assert.equal(withGone.status()[0]!.health, 'unhealthy');
    assert.equal(withGone.pick(), undefined);
    await withGone.close();
    await upstream.close();
  });
});
