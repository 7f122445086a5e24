/**
 * Writes that ride a transaction's commit (`UnitOfWork.atCommit`).
 *
 * A write whose result the transaction does not read back (an outbox
 * message, an audit row, a notification) need not cost a round trip of its
 * own. On PostgreSQL the queued writes and the COMMIT go to the server as one
 * simple-protocol message, `w1; w2; commit`, which the server runs in order
 * inside the open transaction: if any of them fails, the rest is skipped, the
 * transaction is rolled back and `Store.transaction` rejects with that error.
 * Simple-protocol messages carry no parameters, so each write's parameters
 * are inlined as literals with pg's own escaping (`inlineParameters`).
 * On SQLite (no round trips) the writes simply run just before COMMIT.
 *
 * The driver finds the writes of the transaction it is committing by its
 * connection: `Store.transaction` hands them over (`queueForCommit`) just
 * before Kysely commits, so everything else about transactions stays
 * Kysely's. (Not an AsyncLocalStorage: on Node 20 an active one puts a hook
 * on every promise in the process.)
 */
import { CompiledQuery, PostgresAdapter, PostgresDriver, PostgresIntrospector, PostgresQueryCompiler, type DatabaseConnection, type Dialect, type Kysely, type PostgresDialectConfig, type Transaction } from 'kysely';
import { createRequire } from 'node:module';

/** pg's own conversion of a parameter to its wire text (dates, buffers, arrays, JSON). */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils') as { prepareValue: (value: unknown) => string | Buffer | null };

/** A write for the commit: built when the transaction commits, so several calls can merge into one statement. */
export type CommitWrite = () => CompiledQuery | undefined;

/** The commit writes of the transaction being run in this async context. */
export interface CommitFrame {
  readonly writes: CommitWrite[];
}

/** Commit writes waiting for their connection's COMMIT. */
const queued = new WeakMap<DatabaseConnection, CommitFrame>();

/**
 * Hands `frame`'s writes to the COMMIT that `trx` is about to send; call it
 * last in the transaction's callback. No-op without writes.
 */
export async function queueForCommit(trx: Transaction<unknown>, frame: CommitFrame): Promise<void> {
  if (frame.writes.length === 0) return;
  await trx.getExecutor().provideConnection((connection) => {
    queued.set(connection, frame);
    return Promise.resolve();
  });
}

/** Builds the SQL of the frame's writes, in order; `undefined` when there are none. */
export function commitWritesSql(frame: CommitFrame | undefined): string | undefined {
  if (frame === undefined || frame.writes.length === 0) return undefined;
  const statements: string[] = [];
  for (const write of frame.writes) {
    const query = write();
    if (query !== undefined) statements.push(inlineParameters(query));
  }
  return statements.length === 0 ? undefined : statements.join(';\n');
}

/**
 * Replaces `$1`, `$2`, ... in a compiled PostgreSQL query with its parameters
 * as SQL literals. Strings (and what pg would send as strings: dates, JSON,
 * arrays) are quoted as `pg.escapeLiteral` would (`quote`); numbers must be finite.
 * Kysely compiles every value to a parameter, so a `$n` in its SQL text is
 * always a placeholder, never part of a literal.
 */
export function inlineParameters(query: CompiledQuery): string {
  const { sql, parameters } = query;
  if (parameters.length === 0) return sql;
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    const index = Number(n) - 1;
    if (index < 0 || index >= parameters.length) throw new RangeError(`commit write: no parameter for $${n} in ${sql}`);
    return literal(parameters[index]);
  });
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`commit write: cannot inline the number ${value}`);
    return String(value);
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return quote(value);
  // Everything else exactly as pg would send it as a parameter (Date, Buffer, arrays, JSON).
  const text = prepareValue(value);
  if (text === null) return 'null';
  return quote(Buffer.isBuffer(text) ? `\\x${text.toString('hex')}` : text);
}

/**
 * A string literal, exactly as `pg.escapeLiteral` writes it (quotes doubled;
 * with a backslash, an `E''` literal with backslashes doubled, so it reads
 * the same whatever `standard_conforming_strings` is) — but with native
 * replaces instead of a character-by-character loop, which showed in the
 * outbox's profile for message bodies of a few hundred characters.
 */
export function quote(text: string): string {
  const quoted = text.includes("'") ? text.replaceAll("'", "''") : text;
  return text.includes('\\') ? ` E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/** A commit write that NOTIFYs `channel` (delivered to listeners when, and only if, the transaction commits). */
export function notifyWrite(channel: string): CommitWrite {
  const query = CompiledQuery.raw(`select pg_notify(${quote(channel)}, '')`);
  return () => query;
}

/** The PostgreSQL driver, committing with the transaction's commit writes in the same message. */
class CommitWritesPostgresDriver extends PostgresDriver {
  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const frame = queued.get(connection);
    queued.delete(connection);
    const writes = commitWritesSql(frame);
    await connection.executeQuery(CompiledQuery.raw(writes === undefined ? 'commit' : `${writes};\ncommit`));
  }


  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    queued.delete(connection);
    await super.rollbackTransaction(connection);
  }
}

/** Kysely's PostgreSQL dialect with commit writes. */
export function postgresDialect(config: PostgresDialectConfig): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new CommitWritesPostgresDriver(config),
    createIntrospector: (db: Kysely<unknown>) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  };
}
