/**
 * `npm run bench:saga`: the durable saga orchestrator against DBOS Transact and
 * against the raw ceiling, on the same PostgreSQL, in one process run:
 *
 *   (a) Bulwark   `@bulwark/saga`: sagas of 4 steps, each `start()` then `result()` (a saga
 *                 driven here tells its waiter when it settles), 50 in flight
 *   (b) DBOS      `@dbos-inc/dbos-sdk` 5.3: a workflow of 4 `DBOS.registerStep` steps, called
 *                 directly (the cheapest way DBOS runs a workflow and awaits it), 50 in flight.
 *                 DBOS 5.x has no matching transaction datasource in the registry, so each DBOS
 *                 step runs its own small `pg` transaction — the same participant call as (a), (c)
 *   (c) raw       the same 4 participant transactions plus one state row per saga (insert at
 *                 start, update at end) written directly with `pg`, 50 in flight
 *
 * The participant is one function shared by all three: one autocommit transaction on its own
 * pool and schema, `insert ... on conflict do nothing` keyed by the step's idempotency key
 * (`sagaId:step`). Each round runs SAGAS sagas per contender, the contenders alternating, with
 * the participant table truncated before every round and its row count checked after it (4 per
 * saga). After a warm-up round of each, ROUNDS rounds; the figures are the medians. CPU per saga
 * is read from /proc: this process, the PostgreSQL backends of the contender's own connections
 * (by application name; DBOS by its database), the server's auxiliary processes, and for
 * reference every `postgres` process (other work on the machine included). Each round also
 * reports how much of a saga's mean latency was spent inside its participant calls.
 *
 * Flags: `--sagas=N`, `--rounds=N`, `--only=bulwark|dbos|raw` (profiling aid), and the tuning
 * knobs `--participant-pool`, `--bulwark-pool`, `--write-concurrency`, `--max-concurrent`,
 * `--dbos-pool`, `--raw-pool`. The last line is one JSON object of figures.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import pg from 'pg';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { openStore, type Store } from '@bulwark/store';
import { dropPostgresSchema, requirePostgres, testPostgresUrl } from '@bulwark/store/testing';
import { createSagaOrchestrator, defineSaga, sagaMigrations, type SagaDefinition, type SagaOrchestrator } from '@bulwark/saga';
import { cpuPerUnit, cpuSample } from './cpu-meter.js';

const arg = (name: string, fallback: number): number => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.split('=')[1]);
};
const SAGAS = arg('sagas', 2_000);
const ROUNDS = arg('rounds', 3);
const WARMUP = Math.min(500, SAGAS);
const CONCURRENCY = 50;
const STEPS = ['reserve', 'charge', 'ship', 'confirm'] as const;
const only = process.argv.find((a) => a.startsWith('--only='))?.split('=')[1];

/** Tuning, reported in the output. Every pool is sized once here, for its contender's best. */
const TUNING = {
  participantPool: arg('participant-pool', 30),
  bulwark: { poolSize: arg('bulwark-pool', 10), writeConcurrency: arg('write-concurrency', 4), maxConcurrent: arg('max-concurrent', 500) },
  dbos: { systemDatabasePoolSize: arg('dbos-pool', 10) },
  raw: { statePool: arg('raw-pool', 20) },
};

const SERVERS = ['postgres'];

// ------------------------------------------------------------------ participant (shared)

const tag = randomUUID().replaceAll('-', '').slice(0, 10);
const sagaModule = `bench_saga_${tag}`;
const rawSchema = `bench_saga_raw_${tag}`;
const dbosDatabase = `bench_saga_dbos_${tag}`;
const participantSchema = `bench_saga_part_${tag}`;
/** application_name of this bench's own `pg` pools (the store's are `bulwark:<module>`, DBOS's are in its own database). */
const benchApp = `bench_saga_${tag}`;
const participantPool = new pg.Pool({ connectionString: testPostgresUrl, max: TUNING.participantPool, idleTimeoutMillis: 120_000, application_name: `${benchApp}:participant` });
const participantInsert = `insert into "${participantSchema}".effects (key, at) values ($1, $2) on conflict do nothing`;

/** The participant's step: one small transaction keyed by the idempotency key (a repeat changes nothing). */
async function participant(idempotencyKey: string): Promise<void> {
  const t0 = performance.now();
  await participantPool.query(participantInsert, [idempotencyKey, Date.now()]);
  participantMs += performance.now() - t0;
}

/** Time spent inside participant calls (summed over calls in flight), to split a saga's latency. */
let participantMs = 0;

async function participantRows(): Promise<number> {
  const r = await participantPool.query<{ n: string }>(`select count(*) as n from "${participantSchema}".effects`);
  return Number(r.rows[0]?.n ?? 0);
}

// ------------------------------------------------------------------ measurement

const admin = new pg.Client({ connectionString: testPostgresUrl, application_name: `${benchApp}:admin` });

/**
 * CPU of PostgreSQL processes, from /proc: the backends serving this bench's own connections
 * (found by application name or, for DBOS, by its database), and the server's auxiliary
 * processes (WAL writer, checkpointer, background writer, autovacuum) that every writer shares.
 * Other work on the machine's PostgreSQL shows in the `postgres` total of `cpuSample`, not here.
 */
interface PgSample {
  own: Map<number, number>;
  aux: Map<number, number>;
}

async function pgSample(): Promise<PgSample> {
  const { rows } = await admin.query<{ pid: number; backend_type: string; application_name: string | null; datname: string | null }>(
    'select pid, backend_type, application_name, datname from pg_stat_activity where pid <> pg_backend_pid()',
  );
  const own = new Map<number, number>();
  const aux = new Map<number, number>();
  for (const r of rows) {
    const app = r.application_name ?? '';
    const mine = app.startsWith(`bulwark:${sagaModule}`) || app.startsWith(benchApp) || r.datname === dbosDatabase;
    const target = r.backend_type !== 'client backend' ? aux : mine ? own : undefined;
    if (target === undefined) continue;
    const us = processCpuUs(r.pid);
    if (us !== undefined) target.set(r.pid, us);
  }
  return { own, aux };
}

function processCpuUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return undefined;
  }
}

/** CPU µs spent between two samples by the processes of `after` (one born in between counts from 0). */
function spent(before: Map<number, number>, after: Map<number, number>): number {
  let us = 0;
  for (const [pid, t] of after) us += t - (before.get(pid) ?? 0);
  return us;
}

interface Round {
  perS: number;
  p50: number;
  p99: number;
  /** µs per saga: this process, and every `postgres` process on the machine (other work included). */
  cpu: ReturnType<typeof cpuPerUnit>;
  /** Mean ms per saga spent inside its 4 participant calls; the rest of its latency is the contender's own. */
  participantMs: number;
  /** Mean latency, ms. */
  meanMs: number;
  /** µs per saga: the PostgreSQL backends of this contender's connections, and the server's auxiliary processes. */
  pgOwnUs: number;
  pgAuxUs: number;
}

interface Contender {
  name: string;
  /** Runs one saga to completion. */
  saga(n: number): Promise<void>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

/** `count` sagas, CONCURRENCY in flight (a closed loop), each timed from its start call to its completion. */
async function round(c: Contender, count: number): Promise<Round> {
  await participantPool.query(`truncate "${participantSchema}".effects`);
  const latencies: number[] = [];
  let next = 0;
  participantMs = 0;
  const pgBefore = await pgSample();
  const before = cpuSample(SERVERS);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const n = next++;
        const t0 = performance.now();
        await c.saga(n);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuPerUnit(before, cpuSample(SERVERS), count);
  const pgAfter = await pgSample();
  const pgOwnUs = Math.round(spent(pgBefore.own, pgAfter.own) / count);
  const pgAuxUs = Math.round(spent(pgBefore.aux, pgAfter.aux) / count);
  const rows = await participantRows();
  if (rows !== count * STEPS.length) throw new Error(`${c.name}: ${rows} participant rows after ${count} sagas, expected ${count * STEPS.length}`);
  latencies.sort((a, b) => a - b);
  const meanMs = latencies.reduce((a, b) => a + b, 0) / count;
  return { perS: count / elapsed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), meanMs, participantMs: participantMs / count, cpu, pgOwnUs, pgAuxUs };
}

// ------------------------------------------------------------------ (a) Bulwark

async function bulwarkContender(module: string): Promise<{ contender: Contender; close(): Promise<void> }> {
  const store: Store<unknown> = await openStore<unknown>({ module, url: testPostgresUrl, migrations: { saga: sagaMigrations }, poolSize: TUNING.bulwark.poolSize });
  let builder = defineSaga<{ n: number }>('BenchOrder', { input: (raw) => raw as { n: number } });
  for (const [i, name] of STEPS.entries()) {
    const pivot = i === STEPS.length - 1;
    builder = builder.step<void>(name, {
      invoke: async (_data, ctx) => participant(ctx.idempotencyKey),
      ...(pivot ? { pivot: true } : { compensate: async (_data, ctx) => participant(ctx.idempotencyKey) }),
    });
  }
  const definition: SagaDefinition = builder.build();
  const orchestrator: SagaOrchestrator = await createSagaOrchestrator({
    store,
    sagas: [definition],
    writeConcurrency: TUNING.bulwark.writeConcurrency,
    maxConcurrent: TUNING.bulwark.maxConcurrent,
  });
  orchestrator.on('error', (e) => console.error(`bulwark error ${e.where}:`, e.error));
  return {
    contender: {
      name: 'bulwark',
      async saga(n) {
        const { id } = await orchestrator.start(definition, { n });
        const outcome = await orchestrator.result(id, { timeoutMs: 60_000 });
        if (outcome.state !== 'completed') throw new Error(`saga ${id} ended ${outcome.state}: ${outcome.error ?? ''}`);
      },
    },
    async close() {
      await orchestrator.close({ drainMs: 1_000 });
      await store.close();
    },
  };
}

// ------------------------------------------------------------------ (b) DBOS

async function dbosContender(database: string): Promise<{ contender: Contender; close(): Promise<void> }> {
  const url = new URL(testPostgresUrl);
  url.pathname = `/${database}`;
  DBOS.setConfig({ name: 'bulwark-saga-bench', systemDatabaseUrl: url.toString(), systemDatabasePoolSize: TUNING.dbos.systemDatabasePoolSize, logLevel: 'error' });
  const steps = STEPS.map((name) => DBOS.registerStep(async (key: string) => participant(key), { name }));
  const workflow = DBOS.registerWorkflow(
    async (n: number) => {
      const id = DBOS.workflowID!;
      for (const [i, step] of steps.entries()) await step(`${id}:${STEPS[i]!}`);
      return n;
    },
    { name: 'BenchOrder' },
  );
  await DBOS.launch();
  return {
    contender: {
      name: 'dbos',
      async saga(n) {
        await workflow(n);
      },
    },
    async close() {
      await DBOS.shutdown();
    },
  };
}

// ------------------------------------------------------------------ (c) raw ceiling

async function rawContender(schema: string): Promise<{ contender: Contender; close(): Promise<void> }> {
  const pool = new pg.Pool({ connectionString: testPostgresUrl, max: TUNING.raw.statePool, idleTimeoutMillis: 120_000, application_name: `${benchApp}:raw` });
  await pool.query(`create schema if not exists "${schema}"`);
  await pool.query(`create table "${schema}".saga_state (id text primary key, state text not null, input text not null, created_at bigint not null, updated_at bigint not null)`);
  const insert = `insert into "${schema}".saga_state (id, state, input, created_at, updated_at) values ($1, 'running', $2, $3, $3)`;
  const update = `update "${schema}".saga_state set state = 'completed', updated_at = $2 where id = $1`;
  return {
    contender: {
      name: 'raw',
      async saga(n) {
        const id = randomUUID();
        await pool.query(insert, [id, JSON.stringify({ n }), Date.now()]);
        for (const step of STEPS) await participant(`${id}:${step}`);
        await pool.query(update, [id, Date.now()]);
      },
    },
    async close() {
      await pool.end();
    },
  };
}

// ------------------------------------------------------------------ run

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

interface Summary {
  perS: number;
  p50: number;
  p99: number;
  /** Medians of µs per saga. */
  selfUs: number;
  pgOwnUs: number;
  pgAuxUs: number;
  /** bench process + own backends + auxiliary processes. */
  totalUs: number;
  /** Every postgres process on the machine, other engineers' work included (for reference). */
  pgAllUs: number;
  rounds: Round[];
}

function summarize(rounds: Round[]): Summary {
  const m = (f: (r: Round) => number): number => median(rounds.map(f));
  return {
    perS: m((r) => r.perS),
    p50: m((r) => r.p50),
    p99: m((r) => r.p99),
    selfUs: m((r) => r.cpu.selfUs),
    pgOwnUs: m((r) => r.pgOwnUs),
    pgAuxUs: m((r) => r.pgAuxUs),
    totalUs: m((r) => r.cpu.selfUs + r.pgOwnUs + r.pgAuxUs),
    pgAllUs: m((r) => r.cpu.servers.postgres ?? 0),
    rounds,
  };
}

await requirePostgres();
await admin.connect();
const closers: (() => Promise<void>)[] = [];
try {
  await admin.query(`create schema "${participantSchema}"`);
  await admin.query(`create table "${participantSchema}".effects (key text primary key, at bigint not null)`);
  const all: { contender: Contender; close(): Promise<void> }[] = [];
  for (const [name, open] of [
    ['bulwark', () => bulwarkContender(sagaModule)],
    ['dbos', () => dbosContender(dbosDatabase)],
    ['raw', () => rawContender(rawSchema)],
  ] as const) {
    if (only !== undefined && only !== name) continue;
    const c = await open();
    closers.push(() => c.close());
    all.push(c);
  }
  const results = new Map<string, Round[]>(all.map((c) => [c.contender.name, []]));
  for (const { contender } of all) await round(contender, WARMUP);
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so no contender always runs right after the same neighbour.
    const order = r % 2 === 0 ? all : [...all].reverse();
    for (const { contender } of order) {
      const res = await round(contender, SAGAS);
      results.get(contender.name)!.push(res);
      console.error(`  round ${r + 1} ${contender.name.padEnd(7)} ${res.perS.toFixed(0).padStart(5)}/s  p50 ${res.p50.toFixed(1)} ms  p99 ${res.p99.toFixed(1)} ms  mean ${res.meanMs.toFixed(1)} ms (participant ${res.participantMs.toFixed(1)})  CPU µs/saga: bench ${res.cpu.selfUs}, pg own ${res.pgOwnUs}, pg aux ${res.pgAuxUs} (all postgres ${res.cpu.servers.postgres})`);
    }
  }
  const s = new Map([...results].map(([k, v]) => [k, summarize(v)]));
  const b = s.get('bulwark');
  const d = s.get('dbos');
  const w = s.get('raw');

  console.log(`\nsaga bench: ${SAGAS} sagas of ${STEPS.length} steps per round, ${CONCURRENCY} in flight, median of ${ROUNDS} rounds (after a ${WARMUP}-saga warm-up each), same PostgreSQL`);
  console.log(`participant step (all contenders): one autocommit pg transaction, insert keyed by the idempotency key on conflict do nothing (pool ${TUNING.participantPool})`);
  console.log(`bulwark: @bulwark/saga start() then result(); store poolSize ${TUNING.bulwark.poolSize}, writeConcurrency ${TUNING.bulwark.writeConcurrency}, maxConcurrent ${TUNING.bulwark.maxConcurrent}`);
  console.log(`dbos:    @dbos-inc/dbos-sdk 5.3 registerWorkflow/registerStep, workflow called directly; each step runs its own small pg transaction (no 5.x transaction datasource); system database "${dbosDatabase}", pool ${TUNING.dbos.systemDatabasePoolSize}`);
  console.log(`raw:     pg only: state row insert, the 4 participant transactions, state row update; state pool ${TUNING.raw.statePool}\n`);
  const header = `${'contender'.padEnd(10)}${'sagas/s'.padStart(8)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}  |${'CPU µs/saga'.padStart(12)}${'bench'.padStart(7)}${'pg own'.padStart(8)}${'pg aux'.padStart(8)}  |${'all pg'.padStart(8)}  | rounds (sagas/s)`;
  console.log(header);
  console.log('-'.repeat(header.length + 12));
  for (const [name, x] of s) {
    console.log(
      `${name.padEnd(10)}${x.perS.toFixed(0).padStart(8)}${x.p50.toFixed(1).padStart(8)}${x.p99.toFixed(1).padStart(8)}  |${x.totalUs.toFixed(0).padStart(12)}${x.selfUs.toFixed(0).padStart(7)}${x.pgOwnUs.toFixed(0).padStart(8)}${x.pgAuxUs.toFixed(0).padStart(8)}  |${x.pgAllUs.toFixed(0).padStart(8)}  | ${x.rounds.map((r) => r.perS.toFixed(0)).join(', ')}`,
    );
  }
  console.log(`CPU µs/saga = bench process + pg own (backends of the contender's connections) + pg aux (WAL writer, checkpointer, bgwriter, autovacuum: shared);`);
  console.log(`all pg = every postgres process on the machine, other work on it included. Load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (b !== undefined && d !== undefined && w !== undefined) {
    const vsDbos = b.perS / d.perS;
    const vsRaw = b.perS / w.perS;
    console.log(
      `\ntargets: sagas/s >= 2x DBOS: ${vsDbos.toFixed(2)}x ${vsDbos >= 2 ? 'met' : 'NOT met'}; >= 50% of raw: ${(vsRaw * 100).toFixed(0)}% ${vsRaw >= 0.5 ? 'met' : 'NOT met'}; p99 < DBOS p99: ${b.p99.toFixed(1)} vs ${d.p99.toFixed(1)} ms ${b.p99 < d.p99 ? 'met' : 'NOT met'}`,
    );
    console.log(
      JSON.stringify({
        bench: 'saga',
        sagas: SAGAS,
        steps: STEPS.length,
        concurrency: CONCURRENCY,
        rounds: ROUNDS,
        sagas_per_s: Math.round(b.perS),
        dbos_workflows_per_s: Math.round(d.perS),
        raw_ceiling_per_s: Math.round(w.perS),
        vs_dbos: +vsDbos.toFixed(2),
        vs_raw: +vsRaw.toFixed(3),
        p50_ms: +b.p50.toFixed(1),
        p99_ms: +b.p99.toFixed(1),
        dbos_p50_ms: +d.p50.toFixed(1),
        dbos_p99_ms: +d.p99.toFixed(1),
        raw_p50_ms: +w.p50.toFixed(1),
        raw_p99_ms: +w.p99.toFixed(1),
        cpu_us_per_saga: b.totalUs,
        cpu_us_per_saga_bench: b.selfUs,
        cpu_us_per_saga_pg_own: b.pgOwnUs,
        cpu_us_per_saga_pg_aux: b.pgAuxUs,
        dbos_cpu_us_per_workflow: d.totalUs,
        dbos_cpu_us_per_workflow_bench: d.selfUs,
        dbos_cpu_us_per_workflow_pg_own: d.pgOwnUs,
        dbos_cpu_us_per_workflow_pg_aux: d.pgAuxUs,
        raw_cpu_us_per_saga: w.totalUs,
        raw_cpu_us_per_saga_bench: w.selfUs,
        raw_cpu_us_per_saga_pg_own: w.pgOwnUs,
        raw_cpu_us_per_saga_pg_aux: w.pgAuxUs,
        tuning: TUNING,
      }),
    );
  }
} finally {
  for (const close of closers) await close().catch((error: unknown) => console.error('close failed:', error));
  await participantPool.end();
  await Promise.allSettled([dropPostgresSchema(sagaModule), dropPostgresSchema(rawSchema), dropPostgresSchema(participantSchema)]);
  await admin.query(`drop database if exists "${dbosDatabase}" with (force)`).catch((error: unknown) => console.error('drop DBOS database failed:', error));
  await admin.end();
}
