/**
 * `npm run bench:http`: the cost of the service kit, with autocannon on loopback, in one run:
 *
 *   (a) bare         a bare Fastify route: GET /hello?name=x -> {"hello":"x"}
 *   (b) kit          the same route with the kit's defaults: request id, problem errors, querystring
 *                    and response schemas, the bulwark:http:request metrics hook (with a subscriber, as
 *                    telemetry would be), access log plumbing, an in-memory rate limit too generous to refuse
 *   (b') kit, ambient context   (b) with `requestContext: 'always'`: what (b) costs in a process that reads
 *                    the ambient request context (one that loads the client), where the kit enters it for
 *                    every request and Node 20's AsyncLocalStorage hooks every promise. Informational: the
 *                    target is (b) against (a)
 *   (c) idempotent   POST /payments with a unique Idempotency-Key per request on SQLite: the claim (one
 *                    autocommit insert), then the effect and the completed record in one transaction
 *
 * Each server runs in its own child process (one core) and autocannon in this one (the other core).
 * (a), (b) and (b') are measured in alternating rounds and the median round is reported, with the median of
 * the per-round kit/bare ratios (`kit_ratio_paired`: adjacent rounds share the machine's conditions,
 * which matters on a shared machine). Besides req/s, each server reports the CPU it spent per request
 * (user + system, `*_cpu_us`), the figure least disturbed by other load, and (c) its event-loop delay
 * (SQLite runs on the event loop: a slow disk shows there). The last line is one JSON object of
 * figures. `--quick` shortens every phase.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';
import fastify, { type FastifyInstance } from 'fastify';
import { HTTP_REQUEST_CHANNEL, httpMigrations, idempotency, kitServerOptions, rateLimit, serviceKit } from '@bulwark/http';
import { openStore, type Migration } from '@bulwark/store';
import { tokenBucket } from '@bulwark/resilience';

type Kind = 'bare' | 'kit' | 'kit-ambient' | 'idempotent';
const quick = process.argv.includes('--quick');
const seconds = quick ? 2 : 4;
const rounds = quick ? 1 : 5;
const connections = 50;

const helloSchema = {
  querystring: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } },
  response: { 200: { type: 'object', properties: { hello: { type: 'string' } } } },
};

/** What a server reports when asked (`'stats'`): requests served, CPU used (µs) and event-loop delay (ms) since the last ask. */
interface Stats {
  served: number;
  cpuUs: number;
  loopDelayP99Ms: number;
}

function reportStats(app: FastifyInstance): void {
  let served = 0;
  app.server.on('request', () => void served++);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let cpu = process.cpuUsage();
  process.on('message', (message) => {
    if (message !== 'stats') return;
    const used = process.cpuUsage(cpu);
    const stats: Stats = { served, cpuUs: used.user + used.system, loopDelayP99Ms: delay.percentile(99) / 1e6 };
    process.send?.(stats);
    served = 0;
    cpu = process.cpuUsage();
    delay.reset();
  });
}

async function serve(kind: Kind): Promise<void> {
  if (kind === 'bare') {
    const app = fastify();
    app.get<{ Querystring: { name: string } }>('/hello', async (request) => ({ hello: request.query.name }));
    await listen(app);
    return;
  }
  const app = fastify(kitServerOptions());
  await app.register(serviceKit, { openapi: { info: { title: 'bench', version: '1.0.0' } }, ...(kind === 'kit-ambient' ? { requestContext: 'always' as const } : {}) });
  let finished = 0;
  subscribe(HTTP_REQUEST_CHANNEL, () => void finished++); // what telemetry would do
  if (kind === 'kit' || kind === 'kit-ambient') {
    await app.register(rateLimit, { rule: tokenBucket({ capacity: 1_000_000_000, refillRate: 1_000_000_000 }) });
    app.get<{ Querystring: { name: string } }>('/hello', { schema: helloSchema }, async (request) => ({ hello: request.query.name }));
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-http-bench-'));
    const own: Migration[] = [{ id: '0001_payments', up: (db) => db.schema.createTable('payments').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('amount', 'integer', (c) => c.notNull()).execute() }];
    const store = await openStore<{ payments: { id: string; amount: number } }>({ module: 'bench', url: `sqlite:${join(dir, 'bench.db')}`, migrations: { bench: own, http: httpMigrations } });
    app.shutdown.addCloser('store', async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await app.register(idempotency, { store: store as never });
    let n = 0;
    app.post<{ Body: { amount: number } }>(
      '/payments',
      { config: { idempotency: { required: true } }, schema: { body: { type: 'object', required: ['amount'], properties: { amount: { type: 'integer', minimum: 1 } } }, response: { 201: { type: 'object', properties: { id: { type: 'string' }, amount: { type: 'integer' } } } } } },
      async (request, reply) =>
        request.idempotency.transaction<{ payments: { id: string; amount: number } }>(async (tx) => {
          const id = `p${++n}`;
          await tx.db.insertInto('payments').values({ id, amount: request.body.amount }).execute();
          reply.code(201);
          return { id, amount: request.body.amount };
        }),
    );
  }
  await listen(app);
}

async function listen(app: FastifyInstance): Promise<void> {
  reportStats(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
}

interface Figures {
  rps: number;
  /** Server CPU per request, µs. */
  cpuUs: number;
  loopDelayP99Ms: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function start(kind: Kind): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(new URL(import.meta.url), ['--serve', kind], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { child, port: message.port };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

async function stats(child: ChildProcess): Promise<Stats> {
  const reply = once(child, 'message') as Promise<[Stats]>;
  child.send('stats');
  return (await reply)[0];
}

async function load({ child, port }: { child: ChildProcess; port: number }, kind: Kind, durationSec: number): Promise<Figures> {
  await stats(child); // resets the server's counters
  let key = 0;
  const options: autocannon.Options =
    kind === 'idempotent'
      ? {
          url: `http://127.0.0.1:${port}`,
          connections,
          duration: durationSec,
          requests: [
            {
              method: 'POST',
              path: '/payments',
              headers: { 'content-type': 'application/json' },
              body: '{"amount":100}',
              setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'idempotency-key': `bench-${process.pid}-${key++}` } }),
            },
          ],
        }
      : { url: `http://127.0.0.1:${port}/hello?name=bulwark`, connections, duration: durationSec };
  const result = await autocannon(options);
  const server = await stats(child);
  return { rps: result.requests.average, cpuUs: server.cpuUs / Math.max(1, server.served), loopDelayP99Ms: server.loopDelayP99Ms, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors };
}

function median(values: Figures[]): Figures {
  const sorted = [...values].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const bare = await start('bare');
  const kit = await start('kit');
  const ambient = await start('kit-ambient');
  const results: Record<'bare' | 'kit' | 'ambient', Figures[]> = { bare: [], kit: [], ambient: [] };
  try {
    await load(bare, 'bare', 1); // warm-up: JIT and connections
    await load(kit, 'kit', 1);
    await load(ambient, 'kit-ambient', 1);
    for (let r = 0; r < rounds; r++) {
      results.bare.push(await load(bare, 'bare', seconds));
      results.kit.push(await load(kit, 'kit', seconds));
      results.ambient.push(await load(ambient, 'kit-ambient', seconds));
    }
  } finally {
    await Promise.all([stop(bare.child), stop(kit.child), stop(ambient.child)]);
  }
  const idem = await start('idempotent');
  let idempotent: Figures;
  try {
    await load(idem, 'idempotent', 1);
    idempotent = await load(idem, 'idempotent', seconds);
  } finally {
    await stop(idem.child);
  }
  const a = median(results.bare);
  const b = median(results.kit);
  const b2 = median(results.ambient);
  const rows: [string, Figures][] = [
    ['(a) bare Fastify route', a],
    ['(b) kit defaults', b],
    ["(b') kit, ambient context on", b2],
    ['(c) Idempotency-Key, SQLite', idempotent],
  ];
  console.log(`${connections} connections, ${seconds} s per phase, median of ${rounds} alternating rounds for (a), (b) and (b')\n`);
  console.log(`${'contender'.padEnd(30)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'non-2xx'.padStart(8)} ${'errors'.padStart(7)} ${'server µs/req'.padStart(14)}`);
  for (const [name, f] of rows) console.log(`${name.padEnd(30)} ${f.rps.toFixed(0).padStart(9)} ${String(f.p50).padStart(7)} ${String(f.p99).padStart(7)} ${String(f.non2xx).padStart(8)} ${String(f.errors).padStart(7)} ${f.cpuUs.toFixed(1).padStart(14)}`);
  const ratios = results.kit.map((f, r) => f.rps / results.bare[r]!.rps);
  console.log(`\nrounds (req/s): bare ${results.bare.map((f) => f.rps.toFixed(0)).join(', ')}; kit ${results.kit.map((f) => f.rps.toFixed(0)).join(', ')}; kit/bare ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
  console.log(`server CPU per request (µs): bare ${results.bare.map((f) => f.cpuUs.toFixed(1)).join(', ')}; kit ${results.kit.map((f) => f.cpuUs.toFixed(1)).join(', ')}; kit, ambient ${results.ambient.map((f) => f.cpuUs.toFixed(1)).join(', ')}`);
  console.log(`(c) event-loop delay p99: ${idempotent.loopDelayP99Ms.toFixed(1)} ms`);
  console.log(
    JSON.stringify({
      bare_rps: Math.round(a.rps),
      kit_rps: Math.round(b.rps),
      idempotent_rps: Math.round(idempotent.rps),
      bare_p99_ms: a.p99,
      kit_p99_ms: b.p99,
      idempotent_p99_ms: idempotent.p99,
      kit_ratio: Number((b.rps / a.rps).toFixed(3)),
      kit_ratio_paired: Number(medianOf(ratios).toFixed(3)),
      bare_cpu_us: Number(medianOf(results.bare.map((f) => f.cpuUs)).toFixed(1)),
      kit_cpu_us: Number(medianOf(results.kit.map((f) => f.cpuUs)).toFixed(1)),
      kit_ambient_rps: Math.round(b2.rps),
      kit_ambient_cpu_us: Number(medianOf(results.ambient.map((f) => f.cpuUs)).toFixed(1)),
      idempotent_cpu_us: Number(idempotent.cpuUs.toFixed(1)),
      idempotent_loop_delay_p99_ms: Number(idempotent.loopDelayP99Ms.toFixed(1)),
      kit_non2xx: b.non2xx,
      idempotent_non2xx: idempotent.non2xx,
    }),
  );
}

const serveAt = process.argv.indexOf('--serve');
if (serveAt >= 0) await serve(process.argv[serveAt + 1] as Kind);
else await main();
