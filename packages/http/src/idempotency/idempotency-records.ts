/**
 * The idempotency records: claim a key, complete it in the handler's
 * transaction, release it, and clean up expired ones. Works the same on
 * SQLite and PostgreSQL: the claim is an insert that does nothing on conflict
 * followed by a locking read of the existing row, in one transaction.
 *
 * A claim carries a random token. Completion updates the row only where the
 * token still matches, in the same transaction as the handler's effect, so a
 * request whose lock expired and was taken over cannot commit its effect:
 * its transaction rolls back instead (`idempotency-claim-lost`).
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from '@bulwark/store';
import type { Store, UnitOfWork } from '@bulwark/store';
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

type Db = Kysely<HttpTables>;

/** Claims `id` for a request with `fingerprint`, or says why not. */
export function claimKey(store: Store<HttpTables>, id: RecordKey, fingerprint: string, times: ClaimTimes): Promise<Claim> {
  const token = randomUUID();
  const fresh = {
    scope: id.scope,
    route: id.route,
    idem_key: id.key,
    fingerprint,
    state: 'in_progress' as const,
    claim: token,
    locked_until: times.now + times.lockMs,
    status: null,
    headers: null,
    body: null,
    body_encoding: null,
    created_at: times.now,
    expires_at: times.now + times.ttlMs,
  };
  return store.transaction(async (tx): Promise<Claim> => {
    const inserted = await tx.db
      .insertInto('http_idempotency')
      .values(fresh)
      .onConflict((oc) => oc.columns(['scope', 'route', 'idem_key']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return { kind: 'claimed', token, reclaimed: false };
    const row = await tx.forUpdate(where(tx.db.selectFrom('http_idempotency').selectAll(), id)).executeTakeFirst();
    if (row === undefined) return { kind: 'in-progress', retryAfterMs: 0 }; // released between the insert and the read
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
    const lockedUntil = Number(row.locked_until);
    if (lockedUntil > times.now) return { kind: 'in-progress', retryAfterMs: lockedUntil - times.now };
    // The claim's holder ran past its lock (it crashed, or hangs): take the key over. Its effect never
    // committed (effects commit with the completed record), and it can no longer commit: the token changed.
    await where(tx.db.updateTable('http_idempotency').set({ claim: token, locked_until: times.now + times.lockMs }), id).execute();
    return { kind: 'claimed', token, reclaimed: true };
  });
}

/** Marks the claim `token` completed with `response`, in the handler's transaction. Throws `idempotency-claim-lost` if the claim was taken over. */
export async function completeKey(tx: UnitOfWork<HttpTables>, id: RecordKey, token: string, response: StoredResponse): Promise<void> {
  const isBuffer = Buffer.isBuffer(response.body);
  const result = await where(
    tx.db.updateTable('http_idempotency').set({
      state: 'completed',
      status: response.status,
      headers: JSON.stringify(response.headers),
      body: isBuffer ? (response.body as Buffer).toString('base64') : (response.body as string),
      body_encoding: isBuffer ? 'base64' : 'utf8',
      locked_until: 0,
    }),
    id,
  )
    .where('claim', '=', token)
    .where('state', '=', 'in_progress')
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) {
    throw problem('idempotency-claim-lost', 'This request outlived its Idempotency-Key lock and another request took the key over; nothing it did was kept.');
  }
}

/** Gives up the claim `token` (the handler failed): a retry with the same key may run. */
export async function releaseKey(db: Db, id: RecordKey, token: string): Promise<void> {
  await where(db.deleteFrom('http_idempotency'), id).where('claim', '=', token).where('state', '=', 'in_progress').execute();
}

/** Deletes the records that expired by `now`; returns how many. */
export async function deleteExpired(db: Db, now: number): Promise<number> {
  const result = await db.deleteFrom('http_idempotency').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

interface Filterable<Q> {
  where(column: 'scope' | 'route' | 'idem_key', op: '=', value: string): Q;
}

function where<Q extends Filterable<Q>>(query: Q, id: RecordKey): Q {
  return query.where('scope', '=', id.scope).where('route', '=', id.route).where('idem_key', '=', id.key);
}
