/** Test support for sagas: a participant that records effects by idempotency key and honours the participant contract. */
export { Ledger, ledgerMigrations, CompensatedKeyError, type LedgerTables } from './ledger.js';
