/**
 * Errors of `@bulwark/store`, with stable codes. Check them with the exported
 * guards, which read the code, so they hold across duplicate installs.
 */

/** A store's configuration is unusable; `key` names the setting. Stops start-up. */
export class StoreConfigError extends Error {
  readonly code = 'BULWARK_STORE_CONFIG';
  readonly retryable = false;
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`store config "${key}": ${message}`);
    this.name = 'StoreConfigError';
  }
}

/**
 * The migrations in the code and those recorded in the database disagree: a
 * migration was removed, renamed, reordered or edited after it was applied.
 * Migrations are append-only.
 */
export class MigrationMismatchError extends Error {
  readonly code = 'BULWARK_MIGRATION_MISMATCH';
  readonly retryable = false;
  constructor(
    readonly module: string,
    readonly migration: string,
    detail: string,
  ) {
    super(`module "${module}", migration "${migration}": ${detail} (migrations are append-only: add a new one instead)`);
    this.name = 'MigrationMismatchError';
  }
}

/** True for a `StoreConfigError` from any installed copy. */
export function isStoreConfigError(error: unknown): error is StoreConfigError {
  return hasCode(error, 'BULWARK_STORE_CONFIG');
}

/** True for a `MigrationMismatchError` from any installed copy. */
export function isMigrationMismatchError(error: unknown): error is MigrationMismatchError {
  return hasCode(error, 'BULWARK_MIGRATION_MISMATCH');
}

function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
