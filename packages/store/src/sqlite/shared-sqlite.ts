/**
 * One connection per SQLite file per process. better-sqlite3 is synchronous:
 * two connections to one file in one process would block each other's event
 * loop while waiting for the write lock (a transaction holding it awaits
 * between statements). Sharing one connection, Kysely's driver queues
 * transactions instead; other processes still contend through `busy_timeout`.
 */
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { Kysely } from 'kysely';
import { ImmediateSqliteDialect } from './immediate-sqlite-dialect.js';
import { withStatementCache } from './statement-cache.js';
import { openSqlite, type SqliteSettings } from './open-sqlite.js';

interface Shared {
  db: Kysely<unknown>;
  /** Commit signals of every store on this file in this process. */
  signals: EventEmitter;
  users: number;
}

const open = new Map<string, Shared>();

function emitter(): EventEmitter {
  const e = new EventEmitter();
  e.setMaxListeners(0);
  return e;
}

/** A Kysely instance on the process's connection to `path`, its commit signals, and the function that gives it back. */
export function acquireSqlite(path: string, settings: SqliteSettings): { db: Kysely<unknown>; signals: EventEmitter; release: () => Promise<void> } {
  if (path === ':memory:') {
    const db = new Kysely<unknown>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(openSqlite(path, settings)) }) });
    return { db, signals: emitter(), release: () => db.destroy() };
  }
  const key = resolve(path);
  let shared = open.get(key);
  if (shared === undefined) {
    shared = { db: new Kysely<unknown>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(openSqlite(path, settings)) }) }), signals: emitter(), users: 0 };
    open.set(key, shared);
  }
  shared.users++;
  const entry = shared;
  let released = false;
  return {
    db: entry.db,
    signals: entry.signals,
    release: async () => {
      if (released) return;
      released = true;
      if (--entry.users === 0) {
        open.delete(key);
        await entry.db.destroy();
      }
    },
  };
}
