import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { codeOf, settle } from '../test/helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('../test/fixtures/crash-server.ts', import.meta.url));

function start(mode: 'inbound' | 'outbound', signal: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', fixture, mode, signal], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const lines: string[] = [];
  const first = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (lines.length === 1) resolve(line);
    });
    void exited.then(() => reject(new Error(`the child exited before printing anything (${lines.join(' | ')})`)));
  });
  return { child, exited, first, lines };
}

describe('crash faults (a real child process)', () => {
  it('inbound crash: the faulted request kills the process with SIGKILL; other requests were served', async () => {
    const { child, exited, first } = start('inbound', 'SIGKILL');
    try {
      const port = Number((await first).slice('port '.length));
      const ok = await request(`http://127.0.0.1:${port}/fine`);
      assert.equal(ok.statusCode, 200);
      await ok.body.dump();
      const crashed = await settle(request(`http://127.0.0.1:${port}/crash`));
      assert.ok(!crashed.ok && ['ECONNRESET', 'UND_ERR_SOCKET'].includes(codeOf(crashed.error) ?? ''), JSON.stringify(crashed));
      assert.deepEqual(await exited, [null, 'SIGKILL']);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('outbound crash: the faulted call makes the process send itself SIGTERM', async () => {
    const { child, exited, first, lines } = start('outbound', 'SIGTERM');
    try {
      assert.equal(await first, 'calling');
      assert.deepEqual(await exited, [null, 'SIGTERM']);
      assert.equal(lines.includes('survived'), false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
