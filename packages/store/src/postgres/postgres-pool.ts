/**
 * PostgreSQL for a module: a `pg` pool whose connections see the module's
 * own schema first (`search_path`), so table names are the same on both
 * engines, and the schema is created on first use.
 */
import pg from 'pg';
import { StoreConfigError } from '../errors.js';
import { redact } from '../store-url.js';
import { usePreparedStatements } from './prepared.js';

export interface PostgresSettings {
  max: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
}

export function createPool(connectionString: string, schema: string, settings: PostgresSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: settings.max,
    idleTimeoutMillis: settings.idleTimeoutMs,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    options: `-c search_path=${schema}`,
    application_name: `bulwark:${schema}`,
  });
  // An idle connection the server dropped (a restart, a terminated backend) is discarded by the pool;
  // without a listener its 'error' event would crash the process.
  pool.on('error', (error) => process.emitWarning(`bulwark store "${schema}": an idle PostgreSQL connection failed and was discarded: ${error.message}`));
  pool.on('connect', usePreparedStatements);
  return pool;
}

/** Creates the module's schema if it is missing; tolerates another process creating it at the same moment. */
export async function ensureSchema(pool: pg.Pool, schema: string, connectionString: string): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw new StoreConfigError('url', `cannot connect to PostgreSQL at ${redact(connectionString)}: ${(error as Error).message}`);
  }
  try {
    await client.query(`create schema if not exists "${schema}"`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') throw error;
  } finally {
    client.release();
  }
}
