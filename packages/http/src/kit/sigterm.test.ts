import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const fixture = fileURLToPath(new URL('../../test/fixtures/sigterm-server.ts', import.meta.url));

describe('graceful shutdown under load (child process)', () => {
  it('SIGTERM loses no accepted request, closes in reverse order, and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=bulwark:source', fixture], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const lines: string[] = [];
    const accepted = new Set<string>();
    let onAccepted: (() => void) | undefined;
    const port = await new Promise<number>((resolve) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line);
        if (line.startsWith('port ')) resolve(Number(line.slice(5)));
        if (line.startsWith('accepted ')) {
          accepted.add(line.slice(9));
          onAccepted?.();
        }
      });
    });
    const agent = new Agent({ connections: 32, pipelining: 1 });
    const outcomes = new Map<string, number | string>();
    let next = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const id = `r${next++}`;
        try {
          const res = await request(`http://127.0.0.1:${port}/work?id=${id}`, { dispatcher: agent });
          const body = (await res.body.json()) as { id?: string };
          outcomes.set(id, res.statusCode === 200 && body.id === id ? 200 : res.statusCode);
        } catch (error) {
          outcomes.set(id, (error as { code?: string }).code ?? 'error');
          stop = true; // the server is gone: no more requests can be accepted
        }
      }
    };
    const workers = Array.from({ length: 24 }, () => worker());
    await new Promise<void>((resolve) => {
      onAccepted = () => {
        if (accepted.size >= 60) resolve();
      };
    });
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    stop = true;
    await Promise.all(workers);
    await agent.close();

    assert.equal(signal, null);
    assert.equal(code, 0, 'drained and closed cleanly');
    assert.ok(accepted.size >= 60);
    const lost = [...accepted].filter((id) => outcomes.get(id) !== 200);
    assert.deepEqual(lost, [], 'every request the server accepted was answered 200');
    const refusedAfterDrain = [...outcomes.entries()].filter(([id, outcome]) => outcome !== 200 && !accepted.has(id));
    for (const [, outcome] of refusedAfterDrain) assert.ok(outcome === 503 || typeof outcome === 'string', `refused as 503 or at the socket, got ${String(outcome)}`);
    const closed = lines.filter((l) => l.startsWith('closed '));
    assert.deepEqual(closed, ['closed consumer', 'closed pool'], 'closers run after the drain, in reverse order');
    assert.ok(lines.indexOf('closed consumer') > Math.max(...[...accepted].map((id) => lines.indexOf(`accepted ${id}`))), 'closers run after the last accepted request');
  });
});
