/**
 * The idempotency records: claim a key, complete it in the handler's
 * transaction, release it, and clean up expired ones. Works the same on
 * SQLite and PostgreSQL.
 *
 * A claim is first one statement on its own (an insert that does nothing on
 * conflict): a new key, the common case, costs one write and no transaction
 * of its own. Only when the key exists does a transaction read the existing
 * row with a lock and decide (replay, in progress, mismatch, expired, take
 * over).
 *
 * A claim carries a random token. Completion updates the row only where the
 * token still matches, in the same transaction as the handler's effect, so a
 * request whose lock expired and was taken over cannot commit its effect:
 * its transaction rolls back instead (`idempotency-claim-lost`). On
 * PostgreSQL the completion is a commit write (`tx.atCommit`): it travels
 * with the COMMIT in one round trip and fails (rolling everything back) when
 * it completes no row; on SQLite, where statements cost no round trip, it is
 * an update whose row count is checked before the commit.
 *
 * The statements are written once per dialect (not built per request): they
 * are on every idempotent request's path.
 */
import { randomUUID } from 'node:crypto';
import { CompiledQuery, type Dialect, type Store, type UnitOfWork } from '@bulwark/store';
import { problem } from '../problem/problem-error.js';
import type { HttpTables } from './http-migrations.js';

/** Which record a request addresses. */
export interface RecordKey {
  scope: string;
  route: string;
  key: string;
}

/** A completed response, as stored and replayed. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** The outcome of a claim. */
export type Claim =
  | { kind: 'claimed'; token: string; reclaimed: boolean }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'in-progress'; retryAfterMs: number }
  | { kind: 'mismatch' };

export interface ClaimTimes {
  now: number;
  lockMs: number;
  ttlMs: number;
}

const KEY = '"scope" = ? and "route" = ? and "idem_key" = ?';

/** The statements on the request path, in SQLite's placeholders (`?`); `forDialect` numbers them for PostgreSQL. */
const sqliteStatements = {
  claim:
    'insert into "http_idempotency" ("scope", "route", "idem_key", "fingerprint", "state", "claim", "locked_until", "created_at", "expires_at") ' +
    `values (?, ?, ?, ?, 'in_progress', ?, ?, ?, ?) on conflict ("scope", "route", "idem_key") do nothing`,
  complete:
    `update "http_idempotency" set "state" = 'completed', "status" = ?, "headers" = ?, "body" = ?, "body_encoding" = ?, "locked_until" = 0 ` +
    `where ${KEY} and "claim" = ? and "state" = 'in_progress'`,
  release: `delete from "http_idempotency" where ${KEY} and "claim" = ? and "state" = 'in_progress'`,
  deleteExpired:
    'delete from "http_idempotency" where ("scope", "route", "idem_key") in ' +
    '(select "scope", "route", "idem_key" from "http_idempotency" where "expires_at" <= ? limit ?)',
};
type Statements = typeof sqliteStatements;

function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

const postgresStatements: Statements = {
  claim: numbered(sqliteStatements.claim),
  // One statement that completes the row or fails: the update's row count is not seen by a commit write, so a
  // completion that matched no row (the claim was taken over) divides by zero, and the whole transaction rolls back.
  complete: `with done as (${numbered(sqliteStatements.complete)} returning 1) select 1 / (select count(*)::int from done) as completed`,
  release: numbered(sqliteStatements.release),
  deleteExpired: numbered(sqliteStatements.deleteExpired),
};

function statementsOf(dialect: Dialect): Statements {
  return dialect === 'postgres' ? postgresStatements : sqliteStatements;
}

/** Claims `id` for a request with `fingerprint`, or says why not. */
export async function claimKey(store: Store<HttpTables>, id: RecordKey, fingerprint: string, times: ClaimTimes): Promise<Claim> {
  const token = randomUUID();
  const lockedUntil = times.now + times.lockMs;
  const expiresAt = times.now + times.ttlMs;
  // A new key (the common case): one statement, committed on its own.
  const claim = CompiledQuery.raw(statementsOf(store.dialect).claim, [id.scope, id.route, id.key, fingerprint, token, lockedUntil, times.now, expiresAt]);
  const inserted = await store.db.executeQuery(claim);
  if (inserted.numAffectedRows === 1n) return { kind: 'claimed', token, reclaimed: false };
  // The key exists: read it under a lock and decide.
  const fresh = {
    scope: id.scope,
    route: id.route,
    idem_key: id.key,
    fingerprint,
    state: 'in_progress' as const,
    claim: token,
    locked_until: lockedUntil,
    status: null,
    headers: null,
    body: null,
    body_encoding: null,
    created_at: times.now,
    expires_at: expiresAt,
  };
  return store.transaction(async (tx): Promise<Claim> => {
    const row = await tx.forUpdate(where(tx.db.selectFrom('http_idempotency').selectAll(), id)).executeTakeFirst();
    if (row === undefined) {
      // Released (or cleaned up) since the insert: claim it now.
      const again = await tx.db.executeQuery(claim);
      return again.numAffectedRows === 1n ? { kind: 'claimed', token, reclaimed: false } : { kind: 'in-progress', retryAfterMs: 0 };
    }
    if (Number(row.expires_at) <= times.now) {
      // An expired record is no record: the key starts afresh.
      await where(tx.db.updateTable('http_idempotency').set(fresh), id).execute();
      return { kind: 'claimed', token, reclaimed: false };
    }
    if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
    if (row.state === 'completed') {
      const headers = JSON.parse(row.headers ?? '{}') as Record<string, string>;
      const body = row.body_encoding === 'base64' ? Buffer.from(row.body ?? '', 'base64') : (row.body ?? '');
      return { kind: 'replay', response: { status: Number(row.status), headers, body } };
    }
    const heldUntil = Number(row.locked_until);
    if (heldUntil > times.now) return { kind: 'in-progress', retryAfterMs: heldUntil - times.now };
    // The claim's holder ran past its lock (it crashed, or hangs): take the key over. Its effect never
    // committed (effects commit with the completed record), and it can no longer commit: the token changed.
    await where(tx.db.updateTable('http_idempotency').set({ claim: token, locked_until: lockedUntil }), id).execute();
    return { kind: 'claimed', token, reclaimed: true };
  });
}

/** The problem of a request whose claim was taken over before it could commit. */
export function claimLost(): Error {
  return problem('idempotency-claim-lost', 'This request outlived its Idempotency-Key lock and another request took the key over; nothing it did was kept.');
}

/**
 * Marks the claim `token` completed with `response`, in the handler's transaction. On SQLite, throws
 * `idempotency-claim-lost` at once if the claim was taken over; on PostgreSQL the completion is a commit
 * write, and it is the commit that fails (see `IdempotentRequest.transaction`).
 */
export async function completeKey(tx: UnitOfWork<HttpTables>, id: RecordKey, token: string, response: StoredResponse): Promise<void> {
  const isBuffer = Buffer.isBuffer(response.body);
  const body = isBuffer ? (response.body as Buffer).toString('base64') : (response.body as string);
  const complete = CompiledQuery.raw(statementsOf(tx.dialect).complete, [response.status, JSON.stringify(response.headers), body, isBuffer ? 'base64' : 'utf8', id.scope, id.route, id.key, token]);
  if (tx.dialect === 'postgres') {
    tx.atCommit(() => complete);
    return;
  }
  const result = await tx.db.executeQuery(complete);
  if (result.numAffectedRows !== 1n) throw claimLost();
}

/** Gives up the claim `token` (the handler failed): a retry with the same key may run. Returns false when the claim was no longer held. */
export async function releaseKey(store: Store<HttpTables>, id: RecordKey, token: string): Promise<boolean> {
  const result = await store.db.executeQuery(CompiledQuery.raw(statementsOf(store.dialect).release, [id.scope, id.route, id.key, token]));
  return result.numAffectedRows === 1n;
}

/**
 * Deletes the records that expired by `now`, `batch` rows per statement, letting other work run between
 * statements (a day of records deleted in one statement would hold the write lock, and on SQLite the
 * event loop, for as long as that takes). Returns how many it deleted.
 */
export async function deleteExpired(store: Store<HttpTables>, now: number, batch = 1_000): Promise<number> {
  const statement = statementsOf(store.dialect).deleteExpired;
  let total = 0;
  for (;;) {
    const result = await store.db.executeQuery(CompiledQuery.raw(statement, [now, batch]));
    const deleted = Number(result.numAffectedRows ?? 0n);
    total += deleted;
    if (deleted < batch) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

interface Filterable<Q> {
  where(column: 'scope' | 'route' | 'idem_key', op: '=', value: string): Q;
}

function where<Q extends Filterable<Q>>(query: Q, id: RecordKey): Q {
  return query.where('scope', '=', id.scope).where('route', '=', id.route).where('idem_key', '=', id.key);
}
