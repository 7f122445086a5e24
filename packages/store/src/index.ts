/** `@bulwark/store`: a module's data on SQLite or PostgreSQL, one unit of work, append-only migrations. */
export { openStore, Store, type StoreOptions, type UnitOfWork, type Dialect } from './store.js';
export { type Migration, type Migrations, type MigrationReport } from './migrations.js';
export { StoreConfigError, MigrationMismatchError, isStoreConfigError, isMigrationMismatchError } from './errors.js';
export { parseStoreUrl, redact, type StoreLocation } from './store-url.js';
export { type Durability } from './sqlite/open-sqlite.js';
export { sql, CompiledQuery, type Compilable, type Kysely, type Transaction, type Selectable, type Insertable, type Generated } from 'kysely';
export { type CommitWrite } from './commit-writes.js';
export { preparedQuery } from './postgres/prepared.js';
