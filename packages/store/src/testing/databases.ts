/**
 * Real databases for tests: a fresh SQLite file in a temporary directory, or
 * a fresh module schema on the test PostgreSQL (`BULWARK_TEST_POSTGRES_URL`,
 * default `postgres://postgres@127.0.0.1:5432/test`). Nothing is mocked.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const testPostgresUrl = process.env.BULWARK_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A module name no other test uses. */
export function uniqueModule(prefix = 't'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/** A SQLite URL in a new temporary directory, and a function that deletes it. */
export function tempSqliteUrl(file = 'store.db'): { url: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-'));
  return { url: `sqlite:${join(dir, file)}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Drops a module's schema from the test PostgreSQL. */
export async function dropPostgresSchema(module: string, url = testPostgresUrl): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${module}" cascade`);
  } finally {
    await client.end();
  }
}

/** Fails with a message naming PostgreSQL when it cannot be reached (tests never skip a real server). */
export async function requirePostgres(url = testPostgresUrl): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    throw new Error(`PostgreSQL is required by these tests and is unreachable at ${url}: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A store URL and module for one test on the given engine, with cleanup. */
export interface TestDatabase {
  url: string;
  module: string;
  cleanup: () => Promise<void>;
}

export async function testDatabase(engine: 'sqlite' | 'postgres', prefix = 't'): Promise<TestDatabase> {
  const module = uniqueModule(prefix);
  if (engine === 'sqlite') {
    const { url, cleanup } = tempSqliteUrl(`${module}.db`);
    return { url, module, cleanup: () => Promise.resolve(cleanup()) };
  }
  await requirePostgres();
  return { url: testPostgresUrl, module, cleanup: () => dropPostgresSchema(module) };
}
