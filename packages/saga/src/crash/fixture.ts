/**
 * Shared by the saga crash and takeover tests: the saga they run, the rule
 * that decides which sagas fail and where, the participant's extra call log,
 * the checker that compares what the databases hold with what must be there,
 * and the helper that spawns a worker process.
 *
 * The saga has four steps: s1..s3 compensatable, s4 the pivot. Saga `n`
 * fails (a participant's final refusal) at the step `failAt(n)` names, or
 * completes. Every participant effect goes through `Ledger` (one row per
 * idempotency key; compensations keyed `${invokeKey}:compensate`), so the
 * ledger a correct run leaves behind is known exactly in advance.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openStore, sql, type Migration, type Store } from '@bulwark/store';
import { defineSaga, type SagaDefinition } from '../definition.js';
import { sagaMigrations } from '../schema.js';
import { type Ledger, ledgerMigrations } from '../testing/ledger.js';

export const STEPS = ['s1', 's2', 's3', 's4'] as const;
export type StepName = (typeof STEPS)[number];

/** The step saga `n` is refused at, or `undefined` when it completes: half complete, the rest fail at each step in turn. */
export function failAt(n: number): StepName | undefined {
  switch (n % 8) {
    case 1:
      return 's1';
    case 3:
      return 's2';
    case 5:
      return 's3';
    case 7:
      return 's4'; // the pivot: s1..s3 are compensated
    default:
      return undefined;
  }
}

export const sagaId = (n: number): string => `saga-${n}`;

/** Every participant call, in the ledger's store: who called, with which key, and whether it changed anything. */
export const callMigrations: readonly Migration[] = [
  {
    id: '0001_crash_calls',
    up: (db, dialect) =>
      db.schema
        .createTable('crash_calls')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('saga_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('changed', 'integer', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .execute(),
  },
];

export interface Databases {
  sagaUrl: string;
  sagaModule: string;
  ledgerUrl: string;
  ledgerModule: string;
}

/** Small PostgreSQL pools: the test server is shared, and a killed worker's connections linger a moment. */
export function openSagaStore(d: Databases, poolSize = 2): Promise<Store<unknown>> {
  return openStore<unknown>({ module: d.sagaModule, url: d.sagaUrl, migrations: { saga: sagaMigrations }, poolSize });
}

export function openLedgerStore(d: Databases, poolSize = 2): Promise<Store<unknown>> {
  return openStore<unknown>({ module: d.ledgerModule, url: d.ledgerUrl, migrations: { ledger: ledgerMigrations, crash: callMigrations }, poolSize });
}

export interface Participant {
  ledger: Ledger;
  /** This process's orchestrator owner, recorded with every call. */
  owner: () => string;
  /** How long a call takes, before and after its effect (so a kill can land between the effect and the saga's record of it). */
  pause: (n: number) => number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function recordCall(p: Participant, saga: string, key: string, kind: 'do' | 'undo' | 'refused', changed: boolean): Promise<void> {
  await sql`insert into crash_calls (saga_id, key, kind, changed, owner) values (${saga}, ${key}, ${kind}, ${changed ? 1 : 0}, ${p.owner()})`.execute(p.ledger.store.db);
}

/** The saga both tests run. Invokes retry transient errors generously, so only the deliberate refusals fail a saga. */
export function crashSaga(p: Participant): SagaDefinition<{ n: number }, unknown> {
  const retry = { maxAttempts: 20, backoff: { baseMs: 5, capMs: 100 } };
  const compensationRetry = { maxAttempts: 20, backoff: { baseMs: 5, capMs: 100 }, retryOn: () => true };
  const invoke = (step: StepName) => async (data: { n: number }, ctx: { sagaId: string; idempotencyKey: string }): Promise<void> => {
    await sleep(p.pause(data.n));
    if (failAt(data.n) === step) {
      await recordCall(p, ctx.sagaId, ctx.idempotencyKey, 'refused', false);
      throw Object.assign(new Error(`${step} refused for saga ${data.n}`), { retryable: false });
    }
    const changed = await p.ledger.apply(ctx.idempotencyKey);
    await recordCall(p, ctx.sagaId, ctx.idempotencyKey, 'do', changed);
    await sleep(p.pause(data.n));
  };
  const compensate = async (data: { n: number }, ctx: { sagaId: string; invokeKey: string; idempotencyKey: string }): Promise<void> => {
    await sleep(p.pause(data.n));
    const changed = await p.ledger.undo(ctx.invokeKey, ctx.idempotencyKey);
    await recordCall(p, ctx.sagaId, ctx.idempotencyKey, 'undo', changed);
    await sleep(p.pause(data.n));
  };
  return defineSaga('CrashSaga', {
    input: (raw) => {
      const n = (raw as { n?: unknown } | null)?.n;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error('n must be an integer >= 0');
      return { n };
    },
  })
    .step('s1', { invoke: invoke('s1'), compensate, retry, compensationRetry })
    .step('s2', { invoke: invoke('s2'), compensate, retry, compensationRetry })
    .step('s3', { invoke: invoke('s3'), compensate, retry, compensationRetry })
    .step('s4', { invoke: invoke('s4'), pivot: true, retry })
    .build();
}

// ---------------------------------------------------------------- checking

export interface InstanceFacts {
  id: string;
  state: string;
  failed_step: string | null;
  input: string;
  lease_epoch: number;
}

export interface Effect {
  key: string;
  kind: string;
  undoes: string | null;
}

export interface StepLogFacts {
  saga_id: string;
  step: string;
  phase: string;
  outcome: string;
}

/**
 * Compares the final state of the databases with the one correct outcome of
 * `count` sagas; resolves to every violation found (empty when all is well).
 */
export function violations(count: number, instances: readonly InstanceFacts[], effects: readonly Effect[], steps: readonly StepLogFacts[]): string[] {
  const found: string[] = [];
  const byId = new Map(instances.map((i) => [i.id, i]));
  if (instances.length !== count) found.push(`${instances.length} saga instances, expected ${count}`);

  // Each effect key at most once (the ledger's primary key says so too: this guards the checker's input).
  const effectByKey = new Map<string, Effect>();
  for (const e of effects) {
    if (effectByKey.has(e.key)) found.push(`effect ${e.key} recorded twice`);
    effectByKey.set(e.key, e);
  }

  const expected = new Map<string, Effect>();
  for (let n = 0; n < count; n++) {
    const id = sagaId(n);
    const failing = failAt(n);
    const row = byId.get(id);
    const wantState = failing === undefined ? 'completed' : 'compensated';
    if (row === undefined) found.push(`saga ${id} is missing`);
    else {
      if (row.state !== wantState) found.push(`saga ${id} is ${row.state}, expected ${wantState}`);
      if (row.failed_step !== (failing ?? null)) found.push(`saga ${id} failed at ${String(row.failed_step)}, expected ${String(failing ?? null)}`);
      if ((JSON.parse(row.input) as { n?: unknown }).n !== n) found.push(`saga ${id} has input ${row.input}`);
    }
    const done = failing === undefined ? STEPS.length : STEPS.indexOf(failing);
    for (let i = 0; i < done; i++) {
      const key = `${id}:${STEPS[i]}`;
      expected.set(key, { key, kind: 'do', undoes: null });
      if (failing !== undefined) expected.set(`${key}:compensate`, { key: `${key}:compensate`, kind: 'undo', undoes: key });
    }
  }
  for (const e of expected.values()) {
    const got = effectByKey.get(e.key);
    if (got === undefined) found.push(`${e.kind} ${e.key} never happened`);
    else if (got.kind !== e.kind || got.undoes !== e.undoes) found.push(`${e.key} is ${got.kind} (undoes ${String(got.undoes)}), expected ${e.kind} (undoes ${String(e.undoes)})`);
  }
  for (const e of effectByKey.values()) {
    if (expected.has(e.key)) continue;
    const failing = failAt(Number(/^saga-(\d+):/.exec(e.key)?.[1] ?? -1));
    found.push(`unexpected ${e.kind} ${e.key}${failing === undefined ? '' : ` (the saga fails at ${failing})`}`);
  }
  // Every compensation undoes an effect that happened.
  for (const e of effects) {
    if (e.kind !== 'undo') continue;
    if (e.undoes === null || effectByKey.get(e.undoes)?.kind !== 'do') found.push(`undo ${e.key} undoes ${String(e.undoes)}, which never happened`);
  }
  // One driver per step: a step recorded as succeeded twice was driven twice.
  const succeeded = new Set<string>();
  for (const s of steps) {
    if (s.outcome !== 'succeeded') continue;
    const key = `${s.saga_id}:${s.step}:${s.phase}`;
    if (succeeded.has(key)) found.push(`step log: ${s.phase} of ${s.saga_id}:${s.step} succeeded twice`);
    succeeded.add(key);
  }
  return found;
}

export async function readInstances(store: Store<unknown>): Promise<InstanceFacts[]> {
  const rows = await sql<InstanceFacts>`select id, state, failed_step, input, lease_epoch from saga_instances order by id`.execute(store.db);
  return rows.rows.map((r) => ({ ...r, lease_epoch: Number(r.lease_epoch) }));
}

export async function readSteps(store: Store<unknown>): Promise<StepLogFacts[]> {
  return (await sql<StepLogFacts>`select saga_id, step, phase, outcome from saga_steps order by saga_id, seq`.execute(store.db)).rows;
}

export async function readEffects(store: Store<unknown>): Promise<Effect[]> {
  return (await sql<Effect>`select key, kind, undoes from ledger_effects order by key`.execute(store.db)).rows;
}

export interface Call {
  seq: number;
  saga_id: string;
  key: string;
  kind: string;
  changed: number;
  owner: string;
}

export async function readCalls(store: Store<unknown>): Promise<Call[]> {
  const rows = await sql<Call>`select seq, saga_id, key, kind, changed, owner from crash_calls order by seq`.execute(store.db);
  return rows.rows.map((r) => ({ ...r, seq: Number(r.seq), changed: Number(r.changed) }));
}

/** Sagas per state, e.g. `{ running: 120, completed: 80 }`. */
export async function stateCounts(store: Store<unknown>): Promise<Record<string, number>> {
  const rows = await sql<{ state: string; n: number }>`select state, count(*) as n from saga_instances group by state order by state`.execute(store.db);
  return Object.fromEntries(rows.rows.map((r) => [r.state, Number(r.n)]));
}

export const SETTLED_STATES = ['completed', 'compensated', 'stuck', 'resolved'];

export function settledOf(counts: Record<string, number>): number {
  return SETTLED_STATES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
}

// ---------------------------------------------------------------- worker processes

export interface WorkerConfig extends Databases {
  count: number;
  /** Start sagas 0..count-1 (with their fixed ids). */
  start: boolean;
  /** Exit 0 once every one of the `count` sagas is settled. */
  exitWhenDone: boolean;
  /** Print lease-taken, completed and compensated events as JSON lines. */
  report: boolean;
  leaseMs: number;
  pollIntervalMs: number;
  /** Sagas one worker drives at once; starts beyond it are left for claims as slots free up. */
  maxConcurrent: number;
  owner?: string;
  /** Participant pause: `random` 0-`maxMs` ms, or `by-saga`: 20 + (n % 8) * 15 ms. */
  pause: { kind: 'random'; maxMs: number } | { kind: 'by-saga' };
}

export interface WorkerEvent {
  event: 'lease-taken' | 'completed' | 'compensated';
  sagaId: string;
  owner: string;
  epoch?: number;
}

export interface WorkerRun {
  child: ChildProcess;
  output: string[];
  events: WorkerEvent[];
  exited: Promise<number | null>;
  /** Resolves when the worker printed `line`, or rejects with its output when it exits first. */
  printed: (line: string) => Promise<void>;
}

const workerPath = fileURLToPath(new URL('./worker.ts', import.meta.url));

export function spawnWorker(config: WorkerConfig): WorkerRun {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', workerPath, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const events: WorkerEvent[] = [];
  const waiting = new Map<string, (() => void)[]>();
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      if (line.startsWith('{')) events.push(JSON.parse(line) as WorkerEvent);
      else output.push(line);
      for (const resolve of waiting.get(line) ?? []) resolve();
      waiting.delete(line);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => output.push(`stderr: ${chunk.toString().trim()}`));
  // `close`, not `exit`: by then every line the worker wrote has been read.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const printed = (line: string): Promise<void> =>
    output.includes(line)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          waiting.set(line, [...(waiting.get(line) ?? []), resolve]);
          void exited.then((code) => reject(new Error(`worker exited (${String(code)}) before printing "${line}":\n${output.slice(-30).join('\n')}`)));
        });
  return { child, output, events, exited, printed };
}

/** SIGKILLs a worker and waits until it is gone. */
export async function kill(run: WorkerRun): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  await run.exited;
}
