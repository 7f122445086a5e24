/**
 * Opens a SQLite database for a module, with settings stated plainly:
 *
 * - `journal_mode = WAL`: readers never block the writer, and several
 *   processes can share the file.
 * - `synchronous = NORMAL` by default (`durability: 'normal'`): a committed
 *   transaction survives a crash of the process, but the last transactions
 *   before a power loss or OS crash may be lost. `durability: 'full'` makes
 *   every commit wait for fsync and survive those too, at a cost per commit.
 * - `busy_timeout`: a writer waits this long for another process's write
 *   lock before failing.
 * - `foreign_keys = ON`.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreConfigError } from '../errors.js';

export type Durability = 'normal' | 'full';

export interface SqliteSettings {
  durability: Durability;
  busyTimeoutMs: number;
}

export function openSqlite(path: string, settings: SqliteSettings): Database.Database {
  if (path !== ':memory:') {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (error) {
      throw new StoreConfigError('url', `cannot create the directory of "${path}": ${(error as Error).message}`);
    }
  }
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (error) {
    throw new StoreConfigError('url', `cannot open SQLite file "${path}": ${(error as Error).message}`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${settings.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma(`busy_timeout = ${Math.round(settings.busyTimeoutMs)}`);
  db.pragma('foreign_keys = ON');
  return db;
}
