/**
 * A dependency for the experiments, run as its own process on a loopback
 * port (`startDependency()` forks this file), so its capacity does not depend
 * on the experiment's own event loop. Controlled and read over IPC, so control
 * traffic is never counted as calls. Two models:
 *
 * - `pool`: finite capacity. `workers` requests are served at a time, each for
 *   `serviceMs` (a timer: the capacity is `workers / serviceMs` whatever the
 *   CPU does), the rest wait in one FIFO queue (up to `queueLimit`, beyond it
 *   503 at once). A worker **keeps working on a request whose caller already
 *   gave up** (the connection closed): it is served, its answer thrown away and
 *   counted as wasted. That is how most servers behave, and it is what keeps a
 *   retry storm going after its trigger is gone (Bronson et al., "Metastable
 *   Failures in Distributed Systems", HotOS 2021). An outage (`setOutage(true)`)
 *   stalls every worker: requests are still accepted and queued, none is
 *   started until the outage ends.
 * - `tail`: latency with a heavy tail, drawn per request from `seededRandom`
 *   in arrival order: uniform in `[fastMinMs, fastMaxMs]`, except a share
 *   `slowShare` uniform in `[slowMinMs, slowMaxMs]` ("The Tail at Scale"'s
 *   setting: most answers take a few ms, one in a hundred or so takes hundreds).
 *   A request whose caller gives up is dropped (its timer cancelled).
 *
 * Counts are kept per `bucketMs` from the `start()` time (wall clock, shared
 * with the parent process) so they line up with the load generator's timeline,
 * and per tag — the first segment of the request's path, which the front
 * passes on from the user request (./support.ts) — so that every call is
 * counted under the phase of the user request that caused it, whenever it
 * arrives.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '@bulwark/resilience/testing';

export interface PoolModel {
  model: 'pool';
  /** Requests served at once. */
  workers: number;
  /** Service time of one request, ms. */
  serviceMs: number;
  /** Requests waiting at most; beyond, 503 at once. */
  queueLimit: number;
}

export interface TailModel {
  model: 'tail';
  fastMinMs: number;
  fastMaxMs: number;
  slowShare: number;
  slowMinMs: number;
  slowMaxMs: number;
  seed: number;
}

export type DependencyModel = PoolModel | TailModel;

/** Counts since `start()`; `buckets[i]` covers `[i·bucketMs, (i+1)·bucketMs)`. */
export interface DependencyCounts {
  /** Requests received (the calls the dependency saw). */
  received: number;
  /** Requests answered 200. */
  served: number;
  /** Requests worked on although their caller had gone (pool) — the answer was thrown away. */
  wasted: number;
  /** Requests refused because the queue was full (pool). */
  rejected: number;
  /** Requests dropped because their caller gave up before the answer (tail). */
  cancelled: number;
  /** Longest queue seen (pool). */
  maxQueue: number;
}

export interface TagCounts {
  received: number;
  served: number;
  wasted: number;
  cancelled: number;
}

export interface DependencyStats extends DependencyCounts {
  bucketMs: number;
  buckets: Array<{ received: number; served: number; wasted: number }>;
  /** Counts by tag (the first segment of the request path). */
  byTag: Record<string, TagCounts>;
}

export interface Dependency {
  url: string;
  /** Starts counting (resets every count); `t0` is the wall-clock origin of the buckets (`Date.now()`). */
  start(t0: number): Promise<void>;
  /** Pool model: stall (true) or resume (false) every worker. */
  setOutage(on: boolean): Promise<void>;
  stats(): Promise<DependencyStats>;
  stop(): Promise<void>;
}

type Command = { cmd: 'start'; t0: number } | { cmd: 'outage'; on: boolean } | { cmd: 'stats' };

/** Forks a dependency process with `model` and resolves once it listens. */
export async function startDependency(model: DependencyModel, bucketMs = 100): Promise<Dependency> {
  const child: ChildProcess = fork(new URL(import.meta.url), ['--serve', JSON.stringify({ model, bucketMs })], {
    execArgv: ['--import', import.meta.resolve('tsx'), '--conditions=bulwark:source'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await Promise.race([once(child, 'message'), once(child, 'exit').then(() => [undefined])])) as [{ port: number } | undefined];
  if (ready === undefined) throw new Error('dependency process exited before listening');
  let next = 0;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  child.on('message', (message: { id: number; value: unknown }) => {
    pending.get(message.id)?.resolve(message.value);
    pending.delete(message.id);
  });
  // A question the process can no longer answer fails rather than hangs.
  child.on('exit', (code, signal) => {
    for (const { reject } of pending.values()) reject(new Error(`dependency process exited (${signal ?? code})`));
    pending.clear();
  });
  const ask = <T>(command: Command): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ id, ...command }, (error) => {
        if (error) {
          pending.delete(id);
          reject(error);
        }
      });
    });
  return {
    url: `http://127.0.0.1:${ready.port}`,
    start: (t0) => ask<void>({ cmd: 'start', t0 }),
    setOutage: (on) => ask<void>({ cmd: 'outage', on }),
    stats: () => ask<DependencyStats>({ cmd: 'stats' }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

interface Job {
  res: ServerResponse;
  gone: boolean;
  tag: TagCounts;
}

function serve(model: DependencyModel, bucketMs: number): void {
  let t0 = Date.now();
  let counts: DependencyCounts = zero();
  let buckets: DependencyStats['buckets'] = [];
  let byTag: Record<string, TagCounts> = {};
  const tagOf = (url: string | undefined): TagCounts => {
    const tag = /^\/([A-Za-z0-9_-]{1,40})/.exec(url ?? '')?.[1] ?? '';
    return (byTag[tag] ??= { received: 0, served: 0, wasted: 0, cancelled: 0 });
  };
  const bucket = (): { received: number; served: number; wasted: number } => {
    const i = Math.max(0, Math.floor((Date.now() - t0) / bucketMs));
    while (buckets.length <= i) buckets.push({ received: 0, served: 0, wasted: 0 });
    return buckets[i] as { received: number; served: number; wasted: number };
  };
  const answer = (res: ServerResponse, status: number): void => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(status === 200 ? 'ok' : 'unavailable');
  };

  // The pool model: a FIFO queue (array with a moving head) and `workers` timers.
  let outage = false;
  const queue: Job[] = [];
  let head = 0;
  /** Free workers; `dueAt[w]`: when worker `w`'s current request is due (a late timer must not cost capacity). */
  const idle: number[] = model.model === 'pool' ? Array.from({ length: model.workers }, (_, w) => w) : [];
  const dueAt: number[] = [];
  const finish = (job: Job, worker: number): void => {
    if (job.gone) {
      counts.wasted++;
      job.tag.wasted++;
      bucket().wasted++;
    } else {
      counts.served++;
      job.tag.served++;
      bucket().served++;
      answer(job.res, 200);
    }
    dispatch(worker);
  };
  /** Starts queued requests on free workers; `freed` is a worker that just finished (it goes straight on). */
  const dispatch = (freed?: number): void => {
    if (model.model !== 'pool') return;
    while (!outage && head < queue.length && (freed !== undefined || idle.length > 0)) {
      const job = queue[head] as Job;
      queue[head++] = undefined as unknown as Job;
      if (head > 1024 && head * 2 > queue.length) {
        queue.splice(0, head);
        head = 0;
      }
      const now = performance.now();
      // A worker that goes straight on starts its next request when the last one was due, not when its timer fired.
      const start = freed !== undefined ? Math.max(now - model.serviceMs, Math.min(now, dueAt[freed] ?? now)) : now;
      const worker = freed ?? idle.pop() ?? 0;
      freed = undefined;
      const due = start + model.serviceMs;
      dueAt[worker] = due;
      setTimeout(() => finish(job, worker), Math.max(0, due - now));
    }
    if (freed !== undefined) idle.push(freed);
  };

  const random = model.model === 'tail' ? seededRandom(model.seed) : Math.random;
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const tag = tagOf(req.url);
    counts.received++;
    tag.received++;
    bucket().received++;
    req.resume();
    if (model.model === 'pool') {
      if (queue.length - head >= model.queueLimit) {
        counts.rejected++;
        answer(res, 503);
        return;
      }
      const job: Job = { res, gone: false, tag };
      res.on('close', () => {
        if (!res.writableFinished) job.gone = true;
      });
      queue.push(job);
      counts.maxQueue = Math.max(counts.maxQueue, queue.length - head);
      dispatch();
      return;
    }
    const slow = random() < model.slowShare;
    const u = random();
    const ms = slow ? model.slowMinMs + u * (model.slowMaxMs - model.slowMinMs) : model.fastMinMs + u * (model.fastMaxMs - model.fastMinMs);
    const timer = setTimeout(() => {
      counts.served++;
      tag.served++;
      bucket().served++;
      answer(res, 200);
    }, ms);
    res.on('close', () => {
      if (res.writableFinished) return;
      clearTimeout(timer);
      counts.cancelled++;
      tag.cancelled++;
    });
  });

  process.on('message', (message: Command & { id: number }) => {
    let value: unknown;
    switch (message.cmd) {
      case 'start':
        t0 = message.t0;
        counts = zero();
        buckets = [];
        byTag = {};
        break;
      case 'outage':
        outage = message.on;
        dispatch();
        break;
      case 'stats':
        value = { ...counts, maxQueue: Math.max(counts.maxQueue, queue.length - head), bucketMs, buckets, byTag } satisfies DependencyStats;
        break;
    }
    process.send?.({ id: message.id, value });
  });
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
}

function zero(): DependencyCounts {
  return { received: 0, served: 0, wasted: 0, rejected: 0, cancelled: 0, maxQueue: 0 };
}

if (process.argv[2] === '--serve') {
  const { model, bucketMs } = JSON.parse(process.argv[3] ?? '{}') as { model: DependencyModel; bucketMs: number };
  serve(model, bucketMs);
}
