import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as api from './index.js';
import { errorCodes, type ErrorCode } from './index.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('error registry', () => {
  it('documents every code in the package README with its class, status and retryability', () => {
    const rows = new Map(
      readme
        .split('\n')
        .filter((line) => line.startsWith('| `BULWARK_'))
        .map((line) => {
          const cells = line.split('|').map((c) => c.trim().replaceAll('`', ''));
          return [cells[1] ?? '', { className: cells[2] ?? '', status: Number(cells[3]), retryable: cells[4] === 'yes' }] as const;
        }),
    );
    assert.deepEqual([...rows.keys()].sort(), Object.keys(errorCodes).sort(), 'the README table lists exactly the registered codes');
    for (const [code, entry] of Object.entries(errorCodes) as [ErrorCode, (typeof errorCodes)[ErrorCode]][]) {
      const row = rows.get(code)!;
      assert.equal(row.status, entry.status, `${code}: status`);
      assert.equal(row.retryable, entry.retryable, `${code}: retryable`);
      const type = (api as unknown as Record<string, { code?: string }>)[row.className];
      assert.equal(type?.code, code, `${code}: the README names the exported class ${row.className}`);
    }
  });
});
