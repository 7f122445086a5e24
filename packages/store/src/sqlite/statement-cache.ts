/**
 * Prepared statements kept per SQL text on a SQLite connection. Kysely's
 * SQLite driver prepares every query it runs; preparing (parsing and
 * planning) was 12-15% of the CPU of an idempotent HTTP request. Statements
 * are reused from a bounded LRU; a statement still iterating (a streamed
 * query) is busy and is not handed out twice. SQLite re-prepares a cached
 * statement itself when the schema changed under it.
 */
import type Database from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/** `db` for Kysely's SQLite dialect, preparing each distinct SQL text once (up to `capacity` kept). */
export function withStatementCache(db: Database.Database, capacity = 256): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => void db.close(),
    prepare(sql: string): SqliteStatement {
      const cached = cache.get(sql);
      if (cached !== undefined && !cached.busy) {
        cache.delete(sql); // most recently used last
        cache.set(sql, cached);
        return cached;
      }
      const statement = db.prepare(sql);
      if (cached === undefined) {
        cache.set(sql, statement);
        if (cache.size > capacity) cache.delete(cache.keys().next().value as string);
      }
      return statement;
    },
  };
}
