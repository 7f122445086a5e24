/**
 * `npm run bench:telemetry`: what the three pillars cost a Fastify route, in one run.
 *
 * Contenders (each its own server process on loopback, the same `GET /items/:id` route answering a
 * small JSON body; autocannon in this process drives them in interleaved rounds, so each sees the
 * same machine conditions; figures are the median round):
 *   bare           Fastify, no logger, no telemetry
 *   instrumented   the production set-up the README recommends: `setupTelemetry` (parent-based
 *                  ratio sampler 10 %, every error span kept, memory exporter behind a batch
 *                  processor), `fastifyTelemetry` (server span + RED metrics + access line), pino at
 *                  info to /dev/null (asynchronous file destination) with log sampling at the trace
 *                  ratio: every warn/error line and every 5xx access line kept, the other lines of a
 *                  trace kept or dropped together, deterministically by trace id (so ~10-20 % of
 *                  the 200 access lines are written here)
 *   all-logs       instrumented without log sampling: one access line for every request
 *   fastify-otel   all-logs, but server spans from `@fastify/otel` instead of our hooks (our plugin
 *                  still does RED and the access log), to show which is cheaper
 *   head-sampled   instrumented with `keepErrors: false`: unsampled spans are non-recording (what
 *                  keeping every error span costs)
 *
 * `@bulwark/telemetry` is imported from its compiled `dist/` (the script builds it first), as a user
 * would run it; only this file goes through tsx. The last line is one JSON object of figures.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

type Variant = 'bare' | 'instrumented' | 'all-logs' | 'fastify-otel' | 'head-sampled';
const variants: Variant[] = ['bare', 'instrumented', 'all-logs', 'fastify-otel', 'head-sampled'];
/** The trace sampler's ratio, and the log sampler's in the production set-up. */
const ratio = 0.1;
const quick = process.argv.includes('--quick');
const seconds = quick ? 3 : 5;
const rounds = quick ? 2 : 3;
const connections = 32;

if (process.argv[2] === '--serve') await serve(process.argv[3] as Variant);
else await main();

async function serve(variant: Variant): Promise<void> {
  process.once('SIGINT', () => process.exit(0)); // exit cleanly, so `--cpu-prof` writes its profile
  const { default: Fastify, LogController } = await import('fastify');
  const handler = (request: { params: unknown }) => ({ id: (request.params as { id: string }).id, name: 'widget', price: 1999, stock: 42 });
  if (variant === 'bare') {
    const app = Fastify();
    app.get('/items/:id', handler);
    await listen(app);
    return;
  }
  const { setupTelemetry, createLogger, Metrics, fastifyTelemetry, metricsRoute } = await import('@bulwark/telemetry');
  const telemetry = setupTelemetry({
    serviceName: 'bench',
    serviceVersion: '1.0.0',
    sampler: { ratio, keepErrors: variant !== 'head-sampled' },
    exporter: 'memory',
    memory: { maxSpans: 10_000 },
    processor: 'batch',
    messaging: false,
  });
  const allLogs = variant === 'all-logs' || variant === 'fastify-otel';
  const logger = createLogger({ service: 'bench', version: '1.0.0', level: 'info', destination: '/dev/null', ...(allLogs ? {} : { sampling: { ratio } }) });
  const metrics = new Metrics({ defaultLabels: { service: 'bench' } });
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
  if (variant === 'fastify-otel') {
    const { FastifyOtelInstrumentation } = await import('@fastify/otel');
    const otel = new FastifyOtelInstrumentation({ enabled: true });
    otel.setTracerProvider(telemetry.provider);
    await app.register(otel.plugin());
    await app.register(fastifyTelemetry, { metrics });
  } else {
    await app.register(fastifyTelemetry, { telemetry, metrics, ignoreRoutes: ['/metrics'] });
  }
  await app.register(metricsRoute, { metrics });
  app.get('/items/:id', handler);
  await listen(app);
}

async function listen(app: { listen(o: { port: number; host: string }): Promise<string>; server: { address(): unknown } }): Promise<void> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuUs: user + system });
  });
  process.send?.({ port: (app.server.address() as { port: number }).port });
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Server CPU (user + system) per request: steadier than req/s on a shared machine. */
  cpuUsPerRequest: number;
}

/** The server's CPU time so far, in microseconds. */
function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve((m as { cpuUs: number }).cpuUs));
    child.send('cpu');
  });
}

async function load(server: { child: ChildProcess; port: number }, duration: number): Promise<Figures> {
  const before = await cpuOf(server.child);
  const result = await autocannon({ url: `http://127.0.0.1:${server.port}/items/42`, connections, duration });
  const cpu = (await cpuOf(server.child)) - before;
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx, cpuUsPerRequest: cpu / Math.max(1, result.requests.total) };
}

async function start(variant: Variant): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', variant], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${variant} server exited with ${String(code)}`)));
  });
  return { child, port };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const servers = new Map<Variant, { child: ChildProcess; port: number }>();
  try {
    for (const v of variants) servers.set(v, await start(v));
    for (const v of variants) await load(servers.get(v)!, 2); // warm-up: JIT, connection pools
    const samples = new Map<Variant, Figures[]>(variants.map((v) => [v, []]));
    for (let r = 0; r < rounds; r++) for (const v of variants) samples.get(v)!.push(await load(servers.get(v)!, seconds));
    const fig = (v: Variant) => {
      const s = samples.get(v)!;
      return {
        rps: median(s.map((x) => x.rps)),
        p50: median(s.map((x) => x.p50)),
        p99: median(s.map((x) => x.p99)),
        errors: s.reduce((a, x) => a + x.errors, 0),
        cpuUsPerRequest: median(s.map((x) => x.cpuUsPerRequest)),
      };
    };
    const bare = fig('bare');
    console.log(`${connections} connections, ${rounds} rounds of ${seconds} s per contender, median round.`);
    console.log(`instrumented = production defaults: trace sampler ${ratio} with every error span kept, RED metrics, access log sampled with the trace (log sampling ${ratio}: all warn/error and 5xx lines, the rest kept or dropped per trace); all-logs writes every access line.`);
    console.log('contender       req/s    p50 ms   p99 ms   errors   vs bare   server CPU µs/req');
    for (const v of variants) {
      const f = fig(v);
      console.log(
        `${v.padEnd(14)} ${f.rps.toFixed(0).padStart(6)}   ${f.p50.toFixed(1).padStart(6)}   ${f.p99.toFixed(1).padStart(6)}   ${String(f.errors).padStart(6)}   ${(f.rps / bare.rps).toFixed(3).padStart(7)}   ${f.cpuUsPerRequest.toFixed(1).padStart(8)}`,
      );
    }
    const inst = fig('instrumented');
    const otel = fig('fastify-otel');
    console.log(
      JSON.stringify({
        bench: 'telemetry',
        bare_rps: Math.round(bare.rps),
        instrumented_rps: Math.round(inst.rps),
        bare_p99_ms: bare.p99,
        instrumented_p99_ms: inst.p99,
        ratio: +(inst.rps / bare.rps).toFixed(3),
        bare_cpu_us_per_req: +bare.cpuUsPerRequest.toFixed(1),
        instrumented_cpu_us_per_req: +inst.cpuUsPerRequest.toFixed(1),
        cpu_ratio: +(bare.cpuUsPerRequest / inst.cpuUsPerRequest).toFixed(3),
        fastify_otel_rps: Math.round(otel.rps),
        fastify_otel_p99_ms: otel.p99,
        fastify_otel_ratio: +(otel.rps / bare.rps).toFixed(3),
        fastify_otel_cpu_us_per_req: +otel.cpuUsPerRequest.toFixed(1),
        all_logs_ratio: +(fig('all-logs').rps / bare.rps).toFixed(3),
        all_logs_cpu_us_per_req: +fig('all-logs').cpuUsPerRequest.toFixed(1),
        head_sampled_ratio: +(fig('head-sampled').rps / bare.rps).toFixed(3),
        head_sampled_cpu_us_per_req: +fig('head-sampled').cpuUsPerRequest.toFixed(1),
        sampler_ratio: ratio,
        log_sampling_ratio: ratio,
        connections,
        seconds,
        rounds,
      }),
    );
  } finally {
    for (const { child } of servers.values()) child.kill();
  }
}
