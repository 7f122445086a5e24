/**
 * The SQL of the saga tables, for SQLite and PostgreSQL.
 *
 * Every write an orchestrator makes to a saga it drives is *fenced*: it
 * applies only while the row still names this orchestrator as owner with the
 * lease epoch it claimed. A takeover or an operator action bumps the epoch,
 * so a stalled owner that wakes up cannot overwrite the new owner's work.
 *
 * Progress writes of many sagas go to the database together (see
 * `SagaWriter`): on PostgreSQL one statement updates every instance and
 * appends its step-log rows (a data-modifying CTE, so a log row is written
 * only when its fenced update applied); on SQLite one transaction.
 */
import { CompiledQuery, preparedQuery, type Store } from '@bulwark/store';

export type SagaState = 'queued' | 'running' | 'compensating' | 'completed' | 'compensated' | 'stuck' | 'resolved';
export type SagaPhase = 'forward' | 'compensating';

/** A saga instance as stored. */
export interface InstanceRow {
  id: string;
  type: string;
  version: number;
  state: SagaState;
  phase: SagaPhase;
  stepIndex: number;
  input: string;
  outputs: string;
  lockKey: string | null;
  owner: string | null;
  leaseEpoch: number;
  leaseUntil: number;
  deadlineAt: number | null;
  logSeq: number;
  failedStep: string | null;
  error: string | null;
  createdAt: number;
  updatedAt: number;
}

/** One finished invoke or compensation, for the timeline. */
export interface StepLogRow {
  sagaId: string;
  seq: number;
  step: string;
  phase: 'invoke' | 'compensate';
  outcome: 'succeeded' | 'failed';
  attempts: number;
  startedAt: number;
  finishedAt: number;
  error: string | null;
}

/** An operator action. */
export interface AuditRow {
  sagaId: string;
  at: number;
  action: string;
  actor: string;
  reason: string;
  beforeState: string;
  afterState: string;
}

/** A fenced progress write: the instance's new state and the log rows it appends. */
export interface Progress {
  id: string;
  owner: string;
  epoch: number;
  state: SagaState;
  phase: SagaPhase;
  stepIndex: number;
  /** New outputs JSON, or `null` to keep the stored ones. */
  outputs: string | null;
  failedStep: string | null;
  error: string | null;
  logSeq: number;
  updatedAt: number;
  /** New lease expiry; `0` releases the saga (owner cleared) for any orchestrator to claim. */
  leaseUntil: number;
  logs: readonly StepLogRow[];
}

const INSTANCE_COLUMNS =
  'id, type, version, state, phase, step_index, input, outputs, lock_key, owner, lease_epoch, lease_until, deadline_at, log_seq, failed_step, error, created_at, updated_at';

/** Writes per statement: stays far below both engines' parameter limits. */
const CHUNK = 400;

export class SagaRepository {
  readonly postgres: boolean;

  constructor(readonly store: Store<unknown>) {
    this.postgres = store.dialect === 'postgres';
  }

  /** Inserts new instances; resolves to the ids actually inserted (a conflicting id or lock key inserts nothing). */
  async insert(rows: readonly InstanceRow[]): Promise<Set<string>> {
    const inserted = new Set<string>();
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK);
      const columns = chunk.map((r) => [r.id, r.type, r.version, r.state, r.phase, r.stepIndex, r.input, r.outputs, r.lockKey, r.owner, r.leaseEpoch, r.leaseUntil, r.deadlineAt, r.logSeq, r.failedStep, r.error, r.createdAt, r.updatedAt]);
      let result: { id: string }[];
      if (this.postgres) {
        result = (await this.store.db.executeQuery<{ id: string }>(preparedQuery(PG_INSERT, transpose(columns, 18)))).rows;
      } else {
        const tuples = chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
        result = await this.run<{ id: string }>(`insert into saga_instances (${INSTANCE_COLUMNS}) values ${tuples.join(', ')} on conflict do nothing returning id`, columns.flat());
      }
      for (const row of result) inserted.add(row.id);
    }
    return inserted;
  }

  /** Applies fenced progress writes; resolves to the ids whose write applied (the others lost their lease). */
  async progress(writes: readonly Progress[]): Promise<Set<string>> {
    const applied = new Set<string>();
    if (this.postgres) {
      for (let i = 0; i < writes.length; i += CHUNK) {
        const result = await this.store.db.executeQuery<{ id: string }>(preparedQuery(PG_PROGRESS, progressArrays(writes.slice(i, i + CHUNK))));
        for (const row of result.rows) applied.add(row.id);
      }
      return applied;
    }
    await this.store.transaction(async (tx) => {
      for (const w of writes) {
        const result = await tx.db.executeQuery(
          CompiledQuery.raw(
            'update saga_instances set state = ?, phase = ?, step_index = ?, outputs = coalesce(?, outputs), failed_step = ?, error = ?, log_seq = ?, updated_at = ?, lease_until = ?, owner = case when ? = 0 then null else owner end where id = ? and owner = ? and lease_epoch = ?',
            [w.state, w.phase, w.stepIndex, w.outputs, w.failedStep, w.error, w.logSeq, w.updatedAt, w.leaseUntil, w.leaseUntil, w.id, w.owner, w.epoch],
          ),
        );
        if (Number(result.numAffectedRows ?? 0) === 0) continue;
        applied.add(w.id);
        for (const l of w.logs) {
          await tx.db.executeQuery(
            CompiledQuery.raw('insert into saga_steps (saga_id, seq, step, phase, outcome, attempts, started_at, finished_at, error) values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing', [
              l.sagaId, l.seq, l.step, l.phase, l.outcome, l.attempts, l.startedAt, l.finishedAt, l.error,
            ]),
          );
        }
      }
    });
    return applied;
  }

  /**
   * Claims up to `limit` sagas whose lease has expired (or was released), of
   * the given definitions: sets owner, bumps the epoch, sets the lease.
   * On PostgreSQL `FOR UPDATE SKIP LOCKED`, so orchestrators claiming at
   * once take different sagas.
   */
  async claim(owner: string, now: number, leaseUntil: number, definitions: readonly { name: string; version: number }[], limit: number): Promise<InstanceRow[]> {
    if (definitions.length === 0 || limit <= 0) return [];
    const params: unknown[] = [owner, leaseUntil, now];
    const known = definitions.map((d) => {
      params.push(d.name, d.version);
      return '(type = ? and version = ?)';
    });
    params.push(limit);
    const pick = `select id from saga_instances where state in ('running', 'compensating') and lease_until < ? and (${known.join(' or ')}) order by lease_until limit ?${this.postgres ? ' for update skip locked' : ''}`;
    const rows = await this.run<RawInstance>(
      `update saga_instances set owner = ?, lease_epoch = lease_epoch + 1, lease_until = ? where id in (${pick}) returning ${INSTANCE_COLUMNS}`,
      params,
    );
    return rows.map(toInstance);
  }

  /** Extends the lease of every active saga `owner` drives; resolves to their ids. */
  async heartbeat(owner: string, leaseUntil: number): Promise<Set<string>> {
    const rows = await this.run<{ id: string }>(`update saga_instances set lease_until = ? where owner = ? and state in ('running', 'compensating') returning id`, [leaseUntil, owner]);
    return new Set(rows.map((r) => r.id));
  }

  /** Releases sagas `owner` drives at the given epochs, for any orchestrator to claim at once. */
  async release(owner: string, sagas: readonly { id: string; epoch: number }[]): Promise<void> {
    for (const s of sagas) {
      await this.run(`update saga_instances set owner = null, lease_until = 0 where id = ? and owner = ? and lease_epoch = ?`, [s.id, owner, s.epoch]);
    }
  }

  /**
   * Moves the oldest queued saga on `lockKey` to running (claimable) when no
   * saga holds the key. Resolves to its id, or `undefined`.
   */
  async promoteQueued(lockKey: string, now: number): Promise<string | undefined> {
    try {
      const rows = await this.run<{ id: string }>(
        `update saga_instances set state = 'running', owner = null, lease_until = 0, updated_at = ? where id = (select q.id from saga_instances q where q.state = 'queued' and q.lock_key = ? and not exists (select 1 from saga_instances a where a.lock_key = q.lock_key and a.state in ('running', 'compensating', 'stuck')) order by q.created_at, q.id limit 1) returning id`,
        [now, lockKey],
      );
      return rows[0]?.id;
    } catch (error) {
      // Another orchestrator promoted (or a new saga took the key) at the same moment: the unique lock index said no.
      if (isUniqueViolation(error)) return undefined;
      throw error;
    }
  }

  /** Lock keys that have sagas queued behind them. */
  async queuedKeys(limit: number): Promise<string[]> {
    const rows = await this.run<{ lock_key: string }>(`select distinct lock_key from saga_instances where state = 'queued' limit ?`, [limit]);
    return rows.map((r) => r.lock_key);
  }

  /** Sagas not finished whose deadline has passed. */
  async overdue(now: number, limit: number): Promise<InstanceRow[]> {
    const rows = await this.run<RawInstance>(
      `select ${INSTANCE_COLUMNS} from saga_instances where deadline_at < ? and state in ('queued', 'running', 'compensating') order by deadline_at limit ?`,
      [now, limit],
    );
    return rows.map(toInstance);
  }

  async get(id: string): Promise<InstanceRow | undefined> {
    const rows = await this.run<RawInstance>(`select ${INSTANCE_COLUMNS} from saga_instances where id = ?`, [id]);
    return rows[0] === undefined ? undefined : toInstance(rows[0]);
  }

  /** The saga holding `lockKey`, if any. */
  async lockHolder(lockKey: string): Promise<string | undefined> {
    const rows = await this.run<{ id: string }>(`select id from saga_instances where lock_key = ? and state in ('running', 'compensating', 'stuck')`, [lockKey]);
    return rows[0]?.id;
  }

  async list(filter: { states?: readonly SagaState[]; type?: string; createdBefore?: number; createdAfter?: number; limit: number; after?: string }): Promise<InstanceRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.states !== undefined && filter.states.length > 0) {
      where.push(`state in (${filter.states.map(() => '?').join(', ')})`);
      params.push(...filter.states);
    }
    if (filter.type !== undefined) {
      where.push('type = ?');
      params.push(filter.type);
    }
    if (filter.createdBefore !== undefined) {
      where.push('created_at < ?');
      params.push(filter.createdBefore);
    }
    if (filter.createdAfter !== undefined) {
      where.push('created_at >= ?');
      params.push(filter.createdAfter);
    }
    if (filter.after !== undefined) {
      where.push('id < ?');
      params.push(filter.after);
    }
    params.push(filter.limit);
    const rows = await this.run<RawInstance>(`select ${INSTANCE_COLUMNS} from saga_instances ${where.length > 0 ? `where ${where.join(' and ')}` : ''} order by id desc limit ?`, params);
    return rows.map(toInstance);
  }

  async steps(id: string): Promise<StepLogRow[]> {
    const rows = await this.run<Record<string, unknown>>(`select saga_id, seq, step, phase, outcome, attempts, started_at, finished_at, error from saga_steps where saga_id = ? order by seq`, [id]);
    return rows.map((r) => ({
      sagaId: String(r.saga_id),
      seq: Number(r.seq),
      step: String(r.step),
      phase: r.phase as StepLogRow['phase'],
      outcome: r.outcome as StepLogRow['outcome'],
      attempts: Number(r.attempts),
      startedAt: Number(r.started_at),
      finishedAt: Number(r.finished_at),
      error: (r.error as string | null) ?? null,
    }));
  }

  async audit(id: string): Promise<AuditRow[]> {
    const rows = await this.run<Record<string, unknown>>(`select saga_id, at, action, actor, reason, before_state, after_state from saga_audit where saga_id = ? order by at`, [id]);
    return rows.map((r) => ({
      sagaId: String(r.saga_id),
      at: Number(r.at),
      action: String(r.action),
      actor: String(r.actor),
      reason: String(r.reason),
      beforeState: String(r.before_state),
      afterState: String(r.after_state),
    }));
  }

  /**
   * An operator's state change: applies `change` to the saga (as read, locked)
   * and records the audit row, in one transaction. The change bumps the lease
   * epoch and releases the lease, so whoever drove the saga stops and any
   * orchestrator claims it in its new state.
   */
  async operatorChange(
    id: string,
    decide: (row: InstanceRow) => { state: SagaState; phase: SagaPhase; stepIndex: number },
    audit: { at: number; action: string; actor: string; reason: string },
  ): Promise<{ before: InstanceRow; after: { state: SagaState; phase: SagaPhase; stepIndex: number } }> {
    return this.store.transaction(async (tx) => {
      const select = `select ${INSTANCE_COLUMNS} from saga_instances where id = ?${this.postgres ? ' for update' : ''}`;
      const found = await tx.db.executeQuery<RawInstance>(CompiledQuery.raw(this.sql(select), [id]));
      const raw = found.rows[0];
      if (raw === undefined) return Promise.reject(new NotFound());
      const before = toInstance(raw);
      const after = decide(before);
      await tx.db.executeQuery(
        CompiledQuery.raw(this.sql(`update saga_instances set state = ?, phase = ?, step_index = ?, owner = null, lease_until = 0, lease_epoch = lease_epoch + 1, updated_at = ? where id = ?`), [
          after.state, after.phase, after.stepIndex, audit.at, id,
        ]),
      );
      await tx.db.executeQuery(
        CompiledQuery.raw(this.sql(`insert into saga_audit (saga_id, at, action, actor, reason, before_state, after_state) values (?, ?, ?, ?, ?, ?, ?)`), [
          id, audit.at, audit.action, audit.actor, audit.reason, before.state, after.state,
        ]),
      );
      tx.signal(SAGA_SIGNAL);
      return { before, after };
    });
  }

  /** Runs one statement written with `?` placeholders. */
  async run<R>(text: string, params: readonly unknown[]): Promise<R[]> {
    const result = await this.store.db.executeQuery<R>(CompiledQuery.raw(this.sql(text), [...params]));
    return result.rows;
  }

  private sql(text: string): string {
    return this.postgres ? numbered(text) : text;
  }
}

/** `?` placeholders as PostgreSQL's `$1`, `$2`, ... */
export function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/** Commit signal rung when a saga becomes claimable (released, promoted, changed by an operator). */
export const SAGA_SIGNAL = 'saga';

/** Thrown inside `operatorChange` when the id is unknown. */
export class NotFound extends Error {}

/**
 * PostgreSQL: a batch of new instances as one statement of fixed text (one
 * array per column), run as a named prepared statement.
 */
const PG_INSERT = `insert into saga_instances (${INSTANCE_COLUMNS})
select * from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::bigint[], $13::bigint[], $14::int[], $15::text[], $16::text[], $17::bigint[], $18::bigint[])
on conflict do nothing returning id`;

/**
 * PostgreSQL: a batch of fenced progress writes as one statement of fixed
 * text — each instance updated only where owner and epoch still match, and
 * its step-log rows appended only when its update applied.
 */
const PG_PROGRESS = `with v as (
  select * from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::int[], $11::bigint[], $12::bigint[])
    as v (id, owner, epoch, state, phase, step_index, outputs, failed_step, error, log_seq, updated_at, lease_until)),
u as (update saga_instances s set state = v.state, phase = v.phase, step_index = v.step_index, outputs = coalesce(v.outputs, s.outputs), failed_step = v.failed_step, error = v.error,
    log_seq = v.log_seq, updated_at = v.updated_at, lease_until = v.lease_until, owner = case when v.lease_until = 0 then null else s.owner end
  from v where s.id = v.id and s.owner = v.owner and s.lease_epoch = v.epoch returning s.id),
l as (insert into saga_steps (saga_id, seq, step, phase, outcome, attempts, started_at, finished_at, error)
  select w.* from unnest($13::text[], $14::int[], $15::text[], $16::text[], $17::text[], $18::int[], $19::bigint[], $20::bigint[], $21::text[])
    as w (saga_id, seq, step, phase, outcome, attempts, started_at, finished_at, error)
  where w.saga_id in (select id from u) on conflict do nothing)
select id from u`;

/** The parameters of `PG_PROGRESS`: one array per column of the instances, then of their log rows. */
function progressArrays(writes: readonly Progress[]): unknown[][] {
  const instances = writes.map((w) => [w.id, w.owner, w.epoch, w.state, w.phase, w.stepIndex, w.outputs, w.failedStep, w.error, w.logSeq, w.updatedAt, w.leaseUntil]);
  const logs = writes.flatMap((w) => w.logs.map((l) => [l.sagaId, l.seq, l.step, l.phase, l.outcome, l.attempts, l.startedAt, l.finishedAt, l.error]));
  return [...transpose(instances, 12), ...transpose(logs, 9)];
}

/** Rows to columns: `width` arrays, one per column. */
function transpose(rows: readonly unknown[][], width: number): unknown[][] {
  const columns: unknown[][] = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as unknown[];
    for (let c = 0; c < width; c++) (columns[c] as unknown[])[r] = row[c];
  }
  return columns;
}

type RawInstance = Record<string, unknown>;

function toInstance(r: RawInstance): InstanceRow {
  return {
    id: String(r.id),
    type: String(r.type),
    version: Number(r.version),
    state: r.state as SagaState,
    phase: r.phase as SagaPhase,
    stepIndex: Number(r.step_index),
    input: String(r.input),
    outputs: String(r.outputs),
    lockKey: (r.lock_key as string | null) ?? null,
    owner: (r.owner as string | null) ?? null,
    leaseEpoch: Number(r.lease_epoch),
    leaseUntil: Number(r.lease_until),
    deadlineAt: r.deadline_at === null || r.deadline_at === undefined ? null : Number(r.deadline_at),
    logSeq: Number(r.log_seq),
    failedStep: (r.failed_step as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || (typeof e.message === 'string' && e.message.includes('UNIQUE constraint failed'));
}
