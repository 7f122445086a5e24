/**
 * `npm run bench:gateway`: the gateway against the proxies it must beat, with autocannon on
 * loopback at a fixed number of connections, in one run:
 *
 *   (a) direct        autocannon straight to a node:http upstream (GET /hello -> small JSON)
 *   (b) gateway       Bulwark's gateway, one route with every listed feature on: JWT auth (a real
 *                     EdDSA token verified by `JwtVerifier`, then served from the verified-token cache),
 *                     an in-memory rate limit (too generous to refuse), a circuit breaker, retry with a
 *                     budget, a 2 s deadline (forwarded as bulwark-deadline-ms), X-Forwarded-* and Forwarded
 *                     and traceparent, and P2C over 2 upstream instances
 *   (c) fastify       Fastify + @fastify/http-proxy over the same upstream instance as (a)
 *   (d) nginx         nginx as a keep-alive reverse proxy, when /usr/sbin/nginx exists (null otherwise)
 *
 * Every server runs in its own process; autocannon runs in this one. The contenders are measured in
 * alternating rounds and each figure is the median round. Each proxy also reports its CPU per request
 * (`*_cpu_us`, user + system of the proxy process only), the figure least disturbed by other load.
 * The load average (1 min) at the start and the end is reported too: on a shared machine the
 * req/s figures are only comparable between runs with a similar load.
 * The last line is one JSON object. `--quick` shortens the phases.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

type Role = 'upstream' | 'gateway' | 'fastify';
const quick = process.argv.includes('--quick');
const seconds = quick ? 2 : 5;
const rounds = quick ? 1 : 3;
const connections = 50;
const NGINX = '/usr/sbin/nginx';

interface Stats {
  served: number;
  cpuUs: number;
}

function reportStats(server: Server): void {
  let served = 0;
  server.on('request', () => void served++);
  let cpu = process.cpuUsage();
  process.on('message', (message) => {
    if (message !== 'stats') return;
    const used = process.cpuUsage(cpu);
    process.send?.({ served, cpuUs: used.user + used.system } satisfies Stats);
    served = 0;
    cpu = process.cpuUsage();
  });
}

async function serve(role: Role, args: string[]): Promise<void> {
  if (role === 'upstream') {
    const body = JSON.stringify({ hello: 'world' });
    const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      if (req.url === '/health') return void res.end('ok');
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    reportStats(server);
    server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
    return;
  }
  if (role === 'gateway') {
    const [a, b, issuer, jwksUri] = args as [string, string, string, string];
    const { createGateway } = await import('@bulwark/gateway');
    const gateway = await createGateway({
      config: {
        limits: { maxHeaderSize: 16_384 },
        auth: { issuers: [{ issuer, audience: 'bench', jwksUri }] },
        upstreams: { hello: { instances: [a, b], balancer: 'p2c', connections: 64 } },
        routes: [
          {
            name: 'hello',
            match: { hosts: ['127.0.0.1'], pathPrefix: '/hello' },
            upstream: 'hello',
            auth: { scopes: ['hello:read'] },
            rateLimit: { capacity: 1_000_000_000, refillRate: 1_000_000_000, key: 'sub' },
            breaker: { failureRateThreshold: 50, minimumCalls: 20 },
            retry: { maxAttempts: 2, budget: { ratio: 0.1 } },
            timeoutMs: 2_000,
          },
        ],
      },
    });
    let served = 0;
    let cpu = process.cpuUsage();
    const { port } = await gateway.listen();
    process.on('message', (message) => {
      if (message !== 'stats') return;
      const total = gateway.stats().counters.requests;
      const used = process.cpuUsage(cpu);
      process.send?.({ served: total - served, cpuUs: used.user + used.system } satisfies Stats);
      served = total;
      cpu = process.cpuUsage();
    });
    process.send?.({ port });
    return;
  }
  const [a] = args as [string];
  const { default: fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = fastify();
  await app.register(proxy, { upstream: a, prefix: '/', http2: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  reportStats(app.server);
  process.send?.({ port: (app.server.address() as AddressInfo).port });
}

async function start(role: Role, args: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(new URL(import.meta.url), ['--serve', role, ...args], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { child, port: message.port };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

async function stats(child: ChildProcess | undefined): Promise<Stats | undefined> {
  if (child === undefined) return undefined;
  const reply = once(child, 'message') as Promise<[Stats]>;
  child.send('stats');
  return (await reply)[0];
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  cpuUs: number | undefined;
}

async function load(port: number, headers: Record<string, string>, durationSec: number, child: ChildProcess | undefined): Promise<Figures> {
  await stats(child);
  const result = await autocannon({ url: `http://127.0.0.1:${port}/hello`, connections, duration: durationSec, headers });
  const s = await stats(child);
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    cpuUs: s === undefined || s.served === 0 ? undefined : Math.round((s.cpuUs / s.served) * 10) / 10,
  };
}

function median(values: Figures[]): Figures {
  const sorted = [...values].sort((x, y) => x.rps - y.rps);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function startNginx(upstreamPort: number): Promise<{ port: number; stop: () => Promise<void> } | undefined> {
  if (!existsSync(NGINX)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-nginx-'));
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }`,
  );
  const child = spawn(NGINX, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const loadStart = loadavg()[0]!;
  const { TestIssuer } = await import('@bulwark/http/testing');
  const issuer = await TestIssuer.start();
  const token = await issuer.sign({ sub: 'bench-user', aud: 'bench', scope: 'hello:read' }, { expiresInSec: 3600 });
  const up1 = await start('upstream');
  const up2 = await start('upstream');
  const a = `http://127.0.0.1:${up1.port}`;
  const b = `http://127.0.0.1:${up2.port}`;
  const gateway = await start('gateway', [a, b, issuer.issuer, issuer.jwksUri]);
  const fastify = await start('fastify', [a]);
  const nginx = await startNginx(up1.port);

  const auth = { authorization: `Bearer ${token}` };
  // check every contender answers 200 before measuring
  for (const [name, port, headers] of [['direct', up1.port, {}], ['gateway', gateway.port, auth], ['fastify', fastify.port, {}]] as const) {
    const r = await fetch(`http://127.0.0.1:${port}/hello`, { headers });
    if (r.status !== 200) throw new Error(`${name} answered ${r.status}: ${await r.text()}`);
  }
  // warm-up
  await load(gateway.port, auth, 1, undefined);
  await load(fastify.port, {}, 1, undefined);

  const results: Record<string, Figures[]> = { direct: [], gateway: [], fastify: [], nginx: [] };
  for (let round = 0; round < rounds; round++) {
    results.direct!.push(await load(up1.port, {}, seconds, up1.child));
    results.gateway!.push(await load(gateway.port, auth, seconds, gateway.child));
    results.fastify!.push(await load(fastify.port, {}, seconds, fastify.child));
    if (nginx !== undefined) results.nginx!.push(await load(nginx.port, {}, seconds, undefined));
  }
  const direct = median(results.direct!);
  const gw = median(results.gateway!);
  const fp = median(results.fastify!);
  const ng = nginx === undefined ? undefined : median(results.nginx!);

  const row = (name: string, f: Figures | undefined): string =>
    f === undefined ? `| ${name} | n/a | | | | |` : `| ${name} | ${f.rps} | ${f.p50} | ${f.p99} | ${f.cpuUs ?? ''} | ${f.non2xx + f.errors} |`;
  const loadEnd = loadavg()[0]!;
  console.log(`\n${connections} connections, ${seconds} s per phase, median of ${rounds} rounds; load average (1 min) ${loadStart.toFixed(2)} at the start, ${loadEnd.toFixed(2)} at the end`);
  console.log('| contender | req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx+errors |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  console.log(row('(a) direct node:http', direct));
  console.log(row('(b) Bulwark gateway: JWT + rate limit + breaker + retry + deadline + P2C x2', gw));
  console.log(row('(c) Fastify + @fastify/http-proxy', fp));
  console.log(row('(d) nginx keep-alive proxy', ng));

  await Promise.all([up1, up2, gateway, fastify].map((p) => stop(p.child)));
  await nginx?.stop();
  await issuer.close();
  const out = {
    direct_rps: direct.rps,
    direct_p99_ms: direct.p99,
    gateway_rps: gw.rps,
    gateway_p50_ms: gw.p50,
    gateway_p99_ms: gw.p99,
    gateway_cpu_us: gw.cpuUs ?? null,
    gateway_errors: gw.non2xx + gw.errors,
    fastify_proxy_rps: fp.rps,
    fastify_proxy_p99_ms: fp.p99,
    fastify_proxy_cpu_us: fp.cpuUs ?? null,
    nginx_rps: ng?.rps ?? null,
    nginx_p99_ms: ng?.p99 ?? null,
    gateway_vs_fastify: Math.round((gw.rps / fp.rps) * 100) / 100,
    fastify_vs_gateway_cpu: gw.cpuUs === undefined || fp.cpuUs === undefined ? null : Math.round((fp.cpuUs / gw.cpuUs) * 100) / 100,
    load_avg_start: Math.round(loadStart * 100) / 100,
    load_avg_end: Math.round(loadEnd * 100) / 100,
    connections,
    seconds,
    rounds,
  };
  console.log(JSON.stringify(out));
}

process.on('message', (message) => {
  if (message === 'exit') process.exit(0); // lets --cpu-prof write its profile
});
const serveAt = process.argv.indexOf('--serve');
if (serveAt !== -1) await serve(process.argv[serveAt + 1] as Role, process.argv.slice(serveAt + 2));
else await main();
