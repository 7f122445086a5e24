/**
 * A real upstream for the gateway's tests, run as its own process
 * (`startUpstream()` forks this file). node:http, with endpoints that
 * misbehave on purpose. `MODE=fail` answers 503 to everything but /health.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface UpstreamProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Requests this instance saw, by path, since start (asked over IPC). */
  counts(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** Forks an upstream process on a free loopback port. */
export async function startUpstream(name: string, env: Record<string, string> = {}): Promise<UpstreamProcess> {
  const child = fork(new URL(import.meta.url), ['--serve', name], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  const port = message.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    async counts() {
      const reply = once(child, 'message') as Promise<[Record<string, number>]>;
      child.send('counts');
      return (await reply)[0];
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function serve(name: string): void {
  const counts: Record<string, number> = {};
  const fail = process.env.MODE === 'fail';
  let release: (() => void)[] = [];
  let flooded = 0;
  const server = createServer({ keepAliveTimeout: 60_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    counts[path] = (counts[path] ?? 0) + 1;
    counts['*'] = (counts['*'] ?? 0) + 1;
    if (path === '/health') return void res.end('ok');
    if (path === '/release') {
      for (const r of release) r();
      release = [];
      return void res.end('released');
    }
    if (fail) {
      res.writeHead(503, { 'content-type': 'text/plain', 'x-instance': name });
      return void res.end('failing');
    }
    const parts = path.split('/');
    if (parts[1] === 'status') {
      res.writeHead(Number(parts[2]), { 'x-instance': name });
      return void res.end(`status ${parts[2]}`);
    }
    if (parts[1] === 'slow') {
      const timer = setTimeout(() => res.end('slow'), Number(parts[2]));
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (parts[1] === 'big') {
      const n = Number(parts[2]);
      const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
      if (url.searchParams.get('length') !== 'no') headers['content-length'] = n;
      res.writeHead(200, headers);
      res.end(Buffer.alloc(n, 97));
      return;
    }
    if (parts[1] === 'flood') {
      // n bytes (byte i is i % 251) in 64 KiB chunks, honouring backpressure; /flooded tells how far it got
      const n = Number(parts[2]);
      flooded = 0;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      const pump = (): void => {
        while (flooded < n) {
          const size = Math.min(65_536, n - flooded);
          const chunk = Buffer.allocUnsafe(size);
          for (let i = 0; i < size; i++) chunk[i] = (flooded + i) % 251;
          flooded += size;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (path === '/flooded') return void res.end(String(flooded));
    if (parts[1] === 'chunks') {
      // n small chunks (chunked encoding), a macrotask apart every 50: `chunk-<i>;`
      const n = Number(parts[2]);
      res.writeHead(200, { 'content-type': 'text/plain' });
      let i = 0;
      const next = (): void => {
        while (i < n) {
          res.write(`chunk-${i};`);
          i++;
          if (i % 50 === 0) return void setImmediate(next);
        }
        res.end();
      };
      next();
      return;
    }
    if (path === '/stream') {
      // first chunk now, the rest when someone calls /release: proves the gateway does not buffer
      res.writeHead(200, { 'content-type': 'text/plain', 'x-instance': name });
      res.write('first;');
      release.push(() => res.end('last'));
      return;
    }
    if (path === '/upload-ack') {
      // answers as soon as the first body chunk arrives, before the body is complete
      let total = 0;
      let acked = false;
      req.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (!acked) {
          acked = true;
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write(`ack:${chunk.length};`);
        }
      });
      req.on('end', () => res.end(`done:${total}`));
      return;
    }
    if (path === '/reset') {
      req.socket.destroy();
      return;
    }
    if (path === '/hop') {
      res.writeHead(200, { connection: 'keep-alive', 'keep-alive': 'timeout=60', 'proxy-authenticate': 'Basic', 'x-kept': 'yes', 'content-type': 'text/plain' });
      return void res.end('hop');
    }
    // echo
    let bytes = 0;
    req.on('data', (chunk: Buffer) => void (bytes += chunk.length));
    req.on('end', () => {
      const body = JSON.stringify({ instance: name, method: req.method, url: req.url, headers: req.headers, bytes });
      res.writeHead(200, { 'content-type': 'application/json', 'x-instance': name, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on('message', (m) => {
    if (m === 'counts') process.send?.(counts);
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[2] === '--serve') serve(process.argv[3] ?? 'upstream');
