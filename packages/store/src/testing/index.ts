/** Test support for code built on `@bulwark/store`: real, throwaway databases and the store contract suite. */
export { testPostgresUrl, uniqueModule, tempSqliteUrl, dropPostgresSchema, requirePostgres, testDatabase, type TestDatabase } from './databases.js';
export { describeStoreContract } from './store-contract.js';
