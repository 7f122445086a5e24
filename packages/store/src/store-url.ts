/**
 * Where a module's data lives, as one URL:
 *
 *   sqlite:./data/orders.db        a SQLite file (created with its directory)
 *   sqlite::memory:                a private in-memory SQLite database (tests)
 *   postgres://user@host:5432/db   PostgreSQL; the module's tables live in a schema named for the module
 */
import { StoreConfigError } from './errors.js';

export type StoreLocation = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; connectionString: string };

export function parseStoreUrl(url: string, key = 'url'): StoreLocation {
  if (typeof url !== 'string' || url.trim() === '') throw new StoreConfigError(key, 'must be a non-empty string like "sqlite:./data/app.db" or "postgres://user@host/db"');
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new StoreConfigError(key, `"${url}" names no file (use "sqlite::memory:" for an in-memory database)`);
    return { dialect: 'sqlite', path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    try {
      new URL(url);
    } catch {
      throw new StoreConfigError(key, `"${redact(url)}" is not a valid PostgreSQL URL`);
    }
    return { dialect: 'postgres', connectionString: url };
  }
  throw new StoreConfigError(key, `"${redact(url)}" has an unknown scheme (expected sqlite: or postgres://)`);
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/** Module names become SQLite file names and Postgres schema names: keep them plain. */
export function checkModuleName(module: string): string {
  if (typeof module !== 'string' || !/^[a-z][a-z0-9_]{0,62}$/.test(module)) {
    throw new StoreConfigError('module', `${JSON.stringify(module)} must be lowercase letters, digits and underscores, starting with a letter (at most 63)`);
  }
  return module;
}
