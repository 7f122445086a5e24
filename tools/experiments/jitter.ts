/**
 * Experiment `jitter`: Marc Brooker's OCC simulation from "Exponential Backoff
 * And Jitter" (AWS Architecture Blog, 2015), on virtual time.
 *
 * One row, one version number. Each of N clients must update the row exactly
 * once: it reads the version, then writes conditionally on it; the write
 * fails when another client wrote in between (optimistic concurrency), and the
 * client backs off and starts over with a fresh read. Every message crosses a
 * network whose delay is |normal(mean, sd)| (Brooker: mean 10 ms, sd 2 ms).
 * Contention is therefore as in Brooker's model: every round, exactly one of
 * the clients that read the same version wins.
 *
 * Each client runs its read-then-write inside `@bulwark/resilience`'s `retry`
 * policy, whose `Backoff` (base 5 ms, cap 2 s, as Brooker) sleeps on a
 * `VirtualClock`; the network delays and the jitter draw from `seededRandom`,
 * so a run is deterministic for a seed and takes no wall-clock time to wait.
 *
 * Figures per strategy: write calls (the work the server does) and the time
 * until the last client succeeded, both averaged over `runs` seeds.
 */
import { retry, type Jitter } from '@bulwark/resilience';
import { VirtualClock, seededRandom } from '@bulwark/resilience/testing';
import { barChart } from '../scenario/svg.js';

export const jitters: readonly Jitter[] = ['none', 'equal', 'full', 'decorrelated'];

export interface JitterOptions {
  /** Contending clients. Default 100. */
  clients?: number;
  /** Simulations per strategy, each with its own seed; figures are their means. Default 10. */
  runs?: number;
  /** Seed of the first run; run `i` uses `seed + i`. Default 1. */
  seed?: number;
  /** Backoff base and cap. Default 5 ms and 2 000 ms (Brooker's). */
  baseMs?: number;
  capMs?: number;
  /** Network delay per message: |normal(mean, sd)|. Default 10 ms and 2 ms. */
  netMeanMs?: number;
  netSdMs?: number;
}

export interface JitterRow {
  jitter: Jitter;
  /** Mean write attempts per run, all clients together. */
  calls: number;
  /** Mean failed (conflicting) writes per run. */
  conflicts: number;
  /** Mean virtual time until the last client succeeded, ms. */
  completionMs: number;
  /** Write attempts per client, mean over runs. */
  callsPerClient: number;
}

export interface JitterResult {
  clients: number;
  runs: number;
  seed: number;
  rows: JitterRow[];
}

/** A write that lost the race: transient, so the retry policy backs off and tries again. */
class ConflictError extends Error {
  readonly retryable = true;
  constructor() {
    super('version conflict');
    this.name = 'ConflictError';
  }
}

/** |normal(mean, sd)| by Box-Muller, from a uniform source. */
function normalDelay(random: () => number, mean: number, sd: number): () => number {
  return () => {
    const u = 1 - random(); // (0, 1], so the log is finite
    const v = random();
    return Math.abs(mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  };
}

interface RunFigures {
  calls: number;
  conflicts: number;
  completionMs: number;
}

/** One simulation: `clients` clients, one jitter kind, one seed. */
export async function simulate(jitter: Jitter, seed: number, options: JitterOptions = {}): Promise<RunFigures> {
  const clients = options.clients ?? 100;
  const clock = new VirtualClock();
  const net = normalDelay(seededRandom(seed), options.netMeanMs ?? 10, options.netSdMs ?? 2);
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => clock.setTimer(resolve, ms));
  const server = { version: 0, calls: 0, conflicts: 0 };
  const policy = retry({
    maxAttempts: 1_000,
    backoff: { kind: 'exponential', baseMs: options.baseMs ?? 5, capMs: options.capMs ?? 2_000, multiplier: 2, jitter },
    clock,
    random: seededRandom(seed ^ 0x5bd1e995),
  });

  // One attempt: read the version, write conditionally on it; four network crossings.
  const update = async (): Promise<void> => {
    await sleep(net());
    const seen = server.version; // the read, at the server
    await sleep(net());
    await sleep(net());
    server.calls++; // the write, at the server
    const ok = seen === server.version;
    if (ok) server.version++;
    else server.conflicts++;
    await sleep(net());
    if (!ok) throw new ConflictError();
  };

  let finishedAt = 0;
  let failed = 0;
  const done = Array.from({ length: clients }, () =>
    policy.execute(update).then(
      () => {
        finishedAt = Math.max(finishedAt, clock.now());
      },
      () => {
        failed++;
      },
    ),
  );
  // Each timer is one network crossing or one backoff sleep: bounded so a bug cannot spin forever.
  await clock.runAll(clients * 4_000);
  await Promise.all(done);
  if (failed > 0 || server.version !== clients) throw new Error(`jitter: ${failed} clients gave up, version ${server.version}/${clients}`);
  return { calls: server.calls, conflicts: server.conflicts, completionMs: finishedAt };
}

export async function runJitter(options: JitterOptions = {}): Promise<JitterResult> {
  const clients = options.clients ?? 100;
  const runs = options.runs ?? 10;
  const seed = options.seed ?? 1;
  const rows: JitterRow[] = [];
  for (const jitter of jitters) {
    let calls = 0;
    let conflicts = 0;
    let completionMs = 0;
    for (let i = 0; i < runs; i++) {
      const r = await simulate(jitter, seed + i, options);
      calls += r.calls;
      conflicts += r.conflicts;
      completionMs += r.completionMs;
    }
    rows.push({
      jitter,
      calls: round(calls / runs, 1),
      conflicts: round(conflicts / runs, 1),
      completionMs: round(completionMs / runs, 0),
      callsPerClient: round(calls / runs / clients, 2),
    });
  }
  return { clients, runs, seed, rows };
}

/** The figures as one flat JSON-able object. */
export function jitterFigures(result: JitterResult): Record<string, number | string> {
  const figures: Record<string, number | string> = { experiment: 'jitter', clients: result.clients, runs: result.runs, seed: result.seed };
  for (const row of result.rows) {
    figures[`${row.jitter}_calls`] = row.calls;
    figures[`${row.jitter}_completion_ms`] = row.completionMs;
  }
  return figures;
}

export function jitterTable(result: JitterResult): string {
  const lines = [
    `jitter: ${result.clients} OCC clients, mean of ${result.runs} seeded runs from seed ${result.seed} (virtual time)`,
    '',
    '| jitter | write calls | conflicts | calls/client | completion (ms) |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...result.rows.map((r) => `| ${r.jitter} | ${r.calls} | ${r.conflicts} | ${r.callsPerClient} | ${r.completionMs} |`),
  ];
  return lines.join('\n');
}

export function jitterCharts(result: JitterResult): Record<string, string> {
  return {
    'jitter-work.svg': barChart({
      title: `Write calls for ${result.clients} contending clients (mean of ${result.runs} runs)`,
      yLabel: 'write calls',
      groups: result.rows.map((r) => ({ label: r.jitter, bars: [{ name: 'write calls', value: r.calls }] })),
    }),
    'jitter-completion.svg': barChart({
      title: 'Time until the last client succeeded (virtual)',
      yLabel: 'ms (log scale)',
      yLog: true,
      groups: result.rows.map((r) => ({ label: r.jitter, bars: [{ name: 'completion (ms)', value: r.completionMs }] })),
    }),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
