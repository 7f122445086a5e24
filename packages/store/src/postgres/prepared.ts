/**
 * Named prepared statements on PostgreSQL, for hot statements of a fixed
 * text: PostgreSQL parses (and, after a few runs, plans) a named statement
 * once per connection instead of on every execution. `preparedQuery(text,
 * parameters)` marks the text; the store's connections send a marked text as
 * a named statement (`pg` keeps the per-connection cache). On SQLite it is a
 * plain query: the connection already caches prepared statements by text.
 *
 * Mark only texts that do not vary per call (a statement whose text embeds
 * values or a variable number of placeholders would fill every connection's
 * cache): pass batches as arrays (`unnest($1::text[], ...)`) instead.
 */
import { createHash } from 'node:crypto';
import { CompiledQuery } from 'kysely';
import type pg from 'pg';

const names = new Map<string, string>();

/** Bound on distinct marked texts: a guard against marking texts that vary. */
const MAX_PREPARED = 1_000;

/** A compiled query whose text the store's PostgreSQL connections run as a named prepared statement. */
export function preparedQuery(text: string, parameters: readonly unknown[]): CompiledQuery {
  if (!names.has(text) && names.size < MAX_PREPARED) names.set(text, `bulwark_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`);
  return CompiledQuery.raw(text, [...parameters]);
}

type Query = (config: unknown, values?: unknown, callback?: unknown) => unknown;

/** Makes `client` send marked texts as named statements. Called once per new pooled connection. */
export function usePreparedStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as Query;
  (client as unknown as { query: Query }).query = (config, values, callback) => {
    if (typeof config === 'string' && callback === undefined && (values === undefined || Array.isArray(values))) {
      const name = names.get(config);
      if (name !== undefined) return query({ name, text: config, values });
    }
    return query(config, values, callback);
  };
}
