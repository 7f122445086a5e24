/**
 * Kysely's SQLite dialect, with write transactions begun `IMMEDIATE`.
 *
 * A deferred transaction that reads and then writes can fail at once with
 * SQLITE_BUSY when another process wrote in between (WAL snapshots cannot be
 * upgraded), and the busy timeout does not help. Taking the write lock at
 * BEGIN makes concurrent writers from several processes wait their turn
 * (`busy_timeout`) instead.
 */
import { CompiledQuery, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

export class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly settings: SqliteDialectConfig) {
    super(settings);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.settings);
  }
}
