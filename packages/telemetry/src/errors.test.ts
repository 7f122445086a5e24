import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { isBulwarkError } from '@bulwark/resilience';
import * as errors from './errors.js';

it('every error code is documented in the README with its class, status and retryable flag', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const [code, { status, retryable }] of Object.entries(errors.telemetryErrorCodes)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} has a row`);
    const cells = row.split('|').map((c) => c.trim());
    assert.equal(cells[3], String(status), `${code} status`);
    assert.equal(cells[4], retryable ? 'yes' : 'no', `${code} retryable`);
    const cls = cells[2]!.replaceAll('`', '');
    const type = (errors as Record<string, unknown>)[cls] as { code?: string } | undefined;
    assert.equal(type?.code, code, `${cls} is exported with code ${code}`);
  }
});

it('identity survives a second copy of the package: the brand, not the prototype, decides', () => {
  const error = new errors.UnknownLogModuleError('payments');
  const copy = Object.create(Object.prototype, { [Symbol.for('bulwark.telemetry.error')]: { value: true }, code: { value: 'BULWARK_TELEMETRY_UNKNOWN_LOG_MODULE' } }) as unknown;
  assert.ok(copy instanceof errors.UnknownLogModuleError);
  assert.ok(!(copy instanceof errors.InvalidLogLevelError));
  assert.ok(errors.isUnknownLogModuleError(copy) && errors.isTelemetryError(error) && isBulwarkError(error));
  assert.deepEqual([error.code, error.status, error.retryable, error.module], ['BULWARK_TELEMETRY_UNKNOWN_LOG_MODULE', 404, false, 'payments']);
});
