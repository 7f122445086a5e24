import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { LoadPlanError, LoadTargetError, runLoad } from './load.js';
import { arrivalOffsetMs, parsePhases, scheduledCount } from './plan.js';
import { formatProgress, terminalProgress } from './progress.js';
import { isLoopbackAddress } from './target.js';
import type { LoadOptions, Progress } from './types.js';

interface TestServer {
  url: string;
  /** Requests received, by path. */
  paths: Map<string, number>;
  received: () => number;
  close: () => Promise<void>;
}

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const paths = new Map<string, number>();
  let received = 0;
  const server = createServer((req, res) => {
    received++;
    paths.set(req.url ?? '', (paths.get(req.url ?? '') ?? 0) + 1);
    req.resume();
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    received: () => received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ok = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok');
};

const get = (path: string): LoadOptions['workload'] => () => ({ method: 'GET', path });
const near = (actual: number, expected: number, what: string): void => assert.ok(Math.abs(actual - expected) <= 1, `${what}: ${actual}, expected ${expected} ± 1`);

describe('plan: the arrival schedule', () => {
  it('a constant rate is evenly spaced from the phase start; a phase schedules rate × duration', () => {
    const phase = { name: 's', durationMs: 1000, rate: 4 };
    assert.deepEqual([0, 1, 2, 3, 4].map((k) => arrivalOffsetMs(phase, k)), [0, 250, 500, 750, undefined]);
    assert.equal(scheduledCount({ name: 's', durationMs: 30_000, rate: 200 }), 6000);
    assert.equal(scheduledCount({ name: 's', durationMs: 1500, rate: 3 }), 5); // ceil(4.5)
    assert.equal(scheduledCount({ name: 'idle', durationMs: 1000, rate: 0 }), 0);
  });

  it('a ramp schedules the integral of its linear rate, its arrivals ever closer (up) or further apart (down)', () => {
    assert.equal(scheduledCount({ name: 'r', durationMs: 20_000, rate: 200, rateTo: 400 }), 6000);
    assert.equal(scheduledCount({ name: 'r', durationMs: 10_000, rate: 0, rateTo: 100 }), 500);
    assert.equal(scheduledCount({ name: 'r', durationMs: 10_000, rate: 100, rateTo: 0 }), 500);
    const up = { name: 'r', durationMs: 1000, rate: 10, rateTo: 90 };
    const gaps = [1, 2, 3, 4, 5].map((k) => arrivalOffsetMs(up, k)! - arrivalOffsetMs(up, k - 1)!);
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! < gaps[i - 1]!);
  });

  it('parses phase lists', () => {
    assert.deepEqual(parsePhases('warm:10s@50,steady:30s@200,ramp:20s@200..400,pause:500ms@0'), [
      { name: 'warm', durationMs: 10_000, rate: 50 },
      { name: 'steady', durationMs: 30_000, rate: 200 },
      { name: 'ramp', durationMs: 20_000, rate: 200, rateTo: 400 },
      { name: 'pause', durationMs: 500, rate: 0 },
    ]);
    assert.throws(() => parsePhases('warm:10x@50'), (e: unknown) => e instanceof LoadPlanError && e.phaseIndex === 0 && e.field === 'durationMs');
  });
});

describe('runLoad against a local HTTP server', () => {
  it('schedules rate × duration per phase, attributes requests to their phase, counts statuses and kinds', async () => {
    // Every 4th request of a phase answers 503.
    const server = await serve((req, res) => {
      res.writeHead(req.url?.includes('/bad') === true ? 503 : 200);
      res.end('x');
    });
    try {
      const result = await runLoad({
        target: server.url,
        phases: [
          { name: 'slow', durationMs: 800, rate: 50 },
          { name: 'fast', durationMs: 500, rate: 120 },
        ],
        workload: ({ index, phase }) => (index % 4 === 0 ? { method: 'GET', path: `/${phase}/bad?i=${index}`, kind: 'bad' } : { method: 'POST', path: `/${phase}/good`, body: { index } }),
      });
      const [slow, fast] = result.phases;
      near(slow!.scheduled, 40, 'slow phase');
      near(fast!.scheduled, 60, 'fast phase');
      for (const phase of result.phases) {
        const seen = [...server.paths].filter(([path]) => path.startsWith(`/${phase.name}/`)).reduce((n, [, c]) => n + c, 0);
        assert.equal(phase.sent, phase.scheduled);
        assert.equal(seen, phase.sent, `the server saw the ${phase.name} phase's requests`);
        assert.equal(phase.completed, phase.sent);
        const bad = phase.byKind.bad!.sent;
        const good = phase.byKind[`POST /${phase.name}/good`]!.sent;
        assert.equal(bad + good, phase.sent);
        assert.deepEqual(phase.statuses, { '200': good, '503': bad });
        assert.equal(phase.ok, good);
        assert.equal(phase.failed, bad);
        assert.equal(phase.byKind.bad!.failed, bad);
        assert.equal(phase.latency.count, phase.completed);
        assert.equal(phase.okLatency.count, good);
        assert.equal(phase.errorRate, Math.round((bad / phase.scheduled) * 10_000) / 10_000);
      }
      assert.ok(fast!.startMs >= slow!.startMs + slow!.durationMs - 1);
      assert.equal(result.total.scheduled, slow!.scheduled + fast!.scheduled);
      assert.equal(result.total.statuses['503'], slow!.statuses['503']! + fast!.statuses['503']!);
      assert.equal(server.received(), result.total.sent);
      // The timeline adds up to the totals.
      const sum = (f: (p: (typeof result.timeline)[number]) => number): number => result.timeline.reduce((n, p) => n + f(p), 0);
      assert.equal(sum((p) => p.scheduled), result.total.scheduled);
      assert.equal(sum((p) => p.ok), result.total.ok);
      assert.equal(sum((p) => p.failed), result.total.failed);
      assert.equal(result.timeline[0]!.phase, 'slow');
    } finally {
      await server.close();
    }
  });

  it('a ramp schedules the integral of its rate', async () => {
    const server = await serve(ok);
    try {
      const result = await runLoad({ target: server.url, phases: [{ name: 'up', durationMs: 1000, rate: 0, rateTo: 120 }], workload: get('/') });
      near(result.phases[0]!.scheduled, 60, 'ramp 0..120/s over 1 s');
      assert.equal(result.phases[0]!.ok, result.phases[0]!.scheduled);
    } finally {
      await server.close();
    }
  });

  it('stops at maxRequests across phases, and awaits onPhase before each phase', async () => {
    const server = await serve(ok);
    const calls: string[] = [];
    try {
      const result = await runLoad({
        target: server.url,
        phases: [
          { name: 'a', durationMs: 200, rate: 100 },
          { name: 'b', durationMs: 2000, rate: 100 },
          { name: 'c', durationMs: 2000, rate: 100 },
        ],
        maxRequests: 30,
        workload: ({ phase }) => {
          calls.push(phase);
          return { method: 'GET', path: '/' };
        },
        onPhase: async (phase) => {
          calls.push(`start ${phase.name}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        },
      });
      assert.equal(result.total.scheduled, 30);
      assert.equal(server.received(), 30);
      assert.deepEqual(
        result.phases.map((p) => p.scheduled),
        [20, 10, 0],
      );
      assert.equal(calls[0], 'start a');
      assert.equal(calls[21], 'start b');
      assert.ok(!calls.includes('start c'), 'a phase the run never reaches is not started');
      assert.ok(result.phases[1]!.startMs >= result.phases[0]!.startMs + 200, 'phase b starts after a and its onPhase');
    } finally {
      await server.close();
    }
  });

  it('an abort stops the arrivals and returns the figures so far', async () => {
    const server = await serve(ok);
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const result = await runLoad({ target: server.url, phases: [{ name: 'long', durationMs: 60_000, rate: 50 }], workload: get('/'), signal: controller.signal });
      const phase = result.phases[0]!;
      assert.ok(phase.scheduled > 0 && phase.scheduled < 3000, `${phase.scheduled} scheduled`);
      assert.equal(phase.completed, phase.sent);
      assert.equal(server.received(), phase.sent);
      assert.ok(phase.durationMs < 60_000);
    } finally {
      await server.close();
    }
  });

  it('measures from the intended time: arrivals during a stall carry their wait (no coordinated omission)', async () => {
    const stallMs = 400;
    let stalledUntil = 0;
    const calls: { t: number; during: boolean }[] = [];
    let served = 0;
    const server = await serve((_req, res) => {
      // The 15th request starts a stall: everything received until it ends waits for its end.
      if (++served === 15) stalledUntil = performance.now() + stallMs;
      const wait = stalledUntil - performance.now();
      setTimeout(() => ok(_req, res), Math.max(0, wait));
    });
    try {
      const result = await runLoad({
        target: server.url,
        phases: [{ name: 'steady', durationMs: 1200, rate: 100 }],
        // 2 connections: a closed loop on them would send about 2 requests during the stall.
        connections: 2,
        workload: () => {
          const t = performance.now();
          const during = t < stalledUntil;
          calls.push({ t, during });
          return { method: 'GET', path: '/', kind: during ? 'during' : 'other' };
        },
      });
      const total = result.total;
      assert.equal(total.latency.count, total.scheduled, 'one latency sample per arrival');
      assert.equal(total.ok, total.scheduled);
      const during = calls.filter((c) => c.during);
      assert.ok(during.length >= 10, `${during.length} arrivals during the stall, not the ~2 a closed loop would send`);
      assert.equal(result.phases[0]!.byKind.during!.latency.count, during.length);
      // Each arrival during the stall waited at least until its end, counted from its intended
      // time (<= when the workload was called): their mean latency >= the mean remaining stall.
      const mean = during.reduce((n, c) => n + (stalledUntil - c.t), 0) / during.length;
      assert.ok(result.phases[0]!.byKind.during!.latency.mean >= mean * 0.99, `${result.phases[0]!.byKind.during!.latency.mean} >= ${mean}`);
      assert.ok(total.latency.max >= stallMs * 0.99, `max ${total.latency.max} >= the stall ${stallMs}`);
      assert.ok(total.latency.p99 >= (stallMs - 3 * 10) * 0.99, `p99 ${total.latency.p99} holds the stall`);
    } finally {
      await server.close();
    }
  });

  it('drops arrivals beyond maxInFlight instead of delaying them', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    const server = await serve((req, res) => {
      maxConcurrent = Math.max(maxConcurrent, ++concurrent);
      setTimeout(() => {
        concurrent--;
        ok(req, res);
      }, 200);
    });
    try {
      const result = await runLoad({ target: server.url, phases: [{ name: 's', durationMs: 600, rate: 100 }], maxInFlight: 5, workload: get('/') });
      const t = result.total;
      assert.ok(t.dropped > 0, 'some arrivals dropped');
      assert.equal(t.sent + t.dropped, t.scheduled);
      assert.equal(server.received(), t.sent);
      assert.ok(maxConcurrent <= 5, `${maxConcurrent} concurrent at the server`);
      assert.equal(t.failed, t.dropped);
      assert.equal(t.ok, t.sent);
      assert.equal(t.latency.count, t.sent, 'drops have no latency');
      assert.equal(result.timeline.reduce((n, p) => n + p.dropped, 0), t.dropped);
    } finally {
      await server.close();
    }
  });

  it('counts timeouts, and network errors by code', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/reset') req.socket.destroy();
      else if (req.url !== '/hang') ok(req, res);
    });
    try {
      const result = await runLoad({
        target: server.url,
        phases: [
          { name: 'hang', durationMs: 300, rate: 20 },
          { name: 'reset', durationMs: 300, rate: 20 },
        ],
        timeoutMs: 150,
        workload: ({ phase }) => ({ method: 'GET', path: `/${phase}` }),
      });
      const [hang, reset] = result.phases;
      assert.equal(hang!.timedOut, hang!.scheduled);
      assert.equal(hang!.failed, hang!.scheduled);
      assert.deepEqual(hang!.statuses, {});
      assert.ok(hang!.latency.min >= 150 * 0.99, 'a timed-out request counts its full wait');
      const codes = Object.keys(reset!.networkErrors);
      assert.ok(codes.length > 0 && codes.every((c) => /^[A-Z_]+$/.test(c)), `codes ${codes.join(', ')}`);
      assert.equal(
        Object.values(reset!.networkErrors).reduce((n, c) => n + c, 0),
        reset!.scheduled,
      );
      assert.equal(reset!.timedOut, 0);
      assert.equal(reset!.achievedRate, 0, 'no answers');
    } finally {
      await server.close();
    }
    // A closed port: refused connections.
    const closed = await serve(ok);
    await closed.close();
    const refused = await runLoad({ target: closed.url, phases: [{ name: 'x', durationMs: 100, rate: 30 }], workload: get('/') });
    assert.equal(refused.total.networkErrors.ECONNREFUSED, refused.total.scheduled);
  });

  it('reports progress per interval', async () => {
    const server = await serve(ok);
    const reports: Progress[] = [];
    try {
      await runLoad({
        target: server.url,
        phases: [
          { name: 'one', durationMs: 400, rate: 50 },
          { name: 'two', durationMs: 400, rate: 50 },
        ],
        intervalMs: 200,
        progress: (p) => reports.push(p),
        workload: get('/'),
      });
    } finally {
      await server.close();
    }
    assert.ok(reports.length >= 4, `${reports.length} reports`);
    assert.deepEqual([...new Set(reports.map((r) => r.phase))], ['one', 'two']);
    assert.ok(reports.every((r, i) => i === 0 || r.elapsedMs >= reports[i - 1]!.elapsedMs));
    assert.ok(reports.some((r) => r.offeredRate > 0));
  });
});

describe('runLoad refuses bad targets and plans before sending anything', () => {
  it('refuses targets that are not loopback', async () => {
    let calls = 0;
    for (const target of ['http://example.com', 'http://10.0.0.1:80', 'http://8.8.8.8', 'http://[2001:db8::1]:80', 'ftp://127.0.0.1', 'not a url']) {
      await assert.rejects(
        runLoad({ target, phases: [{ name: 's', durationMs: 100, rate: 10 }], workload: () => (calls++, { method: 'GET', path: '/' }), onPhase: () => void calls++ }),
        (e: unknown) => e instanceof LoadTargetError && e.message.includes('loopback'),
        target,
      );
    }
    assert.equal(calls, 0, 'neither the workload nor onPhase ran');
  });

  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1']) assert.ok(isLoopbackAddress(a), a);
    for (const a of ['10.0.0.1', '8.8.8.8', '::ffff:10.0.0.1', '::2', 'fe80::1', '0.0.0.0', 'localhost']) assert.ok(!isLoopbackAddress(a), a);
  });

  it('accepts localhost', async () => {
    const server = await serve(ok);
    try {
      const result = await runLoad({ target: server.url.replace('127.0.0.1', 'localhost'), phases: [{ name: 's', durationMs: 100, rate: 20 }], workload: get('/') });
      assert.equal(result.total.ok, result.total.scheduled);
    } finally {
      await server.close();
    }
  });

  it('names the phase and field of a bad plan', async () => {
    const base = { target: 'http://127.0.0.1:9', workload: get('/') };
    const cases: [LoadOptions['phases'], string, number | undefined, Partial<LoadOptions>?][] = [
      [[], 'phases', undefined],
      [[{ name: 'a', durationMs: 100, rate: 1 }, { name: 'b', durationMs: 0, rate: 1 }], 'durationMs', 1],
      [[{ name: 'a', durationMs: Number.NaN, rate: 1 }], 'durationMs', 0],
      [[{ name: 'a', durationMs: 100, rate: -1 }], 'rate', 0],
      [[{ name: 'a', durationMs: 100, rate: 1, rateTo: Number.POSITIVE_INFINITY }], 'rateTo', 0],
      [[{ name: 'a', durationMs: 100, rate: 6000 }], 'rate', 0],
      [[{ name: 'a', durationMs: 100, rate: 200 }], 'rate', 0, { maxRate: 100 }],
      [[{ name: '', durationMs: 100, rate: 1 }], 'name', 0],
      [[{ name: 'a', durationMs: 100, rate: 1 }], 'maxInFlight', undefined, { maxInFlight: 0 }],
      [[{ name: 'a', durationMs: 100, rate: 1 }], 'maxRequests', undefined, { maxRequests: 1.5 }],
    ];
    for (const [phases, field, phaseIndex, extra] of cases) {
      await assert.rejects(
        runLoad({ ...base, ...extra, phases }),
        (e: unknown) => e instanceof LoadPlanError && e.field === field && e.phaseIndex === phaseIndex && e.message.includes(phaseIndex === undefined ? field : `phases[${phaseIndex}].${field}`),
        `${field} ${String(phaseIndex)}`,
      );
    }
  });
});

describe('terminal progress', () => {
  const p: Progress = { phase: 'steady', phaseIndex: 1, elapsedMs: 12_000, offeredRate: 200, achievedRate: 198, errors: 3, inFlight: 14, p99Ms: 41 };

  it('formats one line', () => {
    assert.equal(formatProgress(p, 4), 'phase 2/4 steady  12.0s  offered 200/s  achieved 198/s  errors 3  in-flight 14  p99 41 ms');
  });

  it('rewrites in place on a TTY and writes plain lines otherwise', () => {
    const fake = (isTTY: boolean): { stream: NodeJS.WriteStream; out: string[] } => {
      const out: string[] = [];
      return { out, stream: { isTTY, write: (s: string) => out.push(s) > 0 } as unknown as NodeJS.WriteStream };
    };
    const tty = fake(true);
    const w = terminalProgress(4, tty.stream);
    w.write(p);
    w.write(p);
    w.end();
    assert.ok(tty.out[0]!.startsWith('\r\x1b[2K') && !tty.out[0]!.endsWith('\n'));
    assert.equal(tty.out.at(-1), '\n');
    const plain = fake(false);
    const w2 = terminalProgress(4, plain.stream);
    w2.write(p);
    w2.end();
    assert.deepEqual(plain.out, [`${formatProgress(p, 4)}\n`]);
  });
});
