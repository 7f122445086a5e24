#!/usr/bin/env node
// Runs every `*.test.ts` under the given roots (default: packages, apps, tools)
// with node's own test runner, TypeScript loaded through tsx and workspace
// packages resolved to their sources (the `bulwark:source` export condition).
// Node 20's `--test` takes no globs, so the file list is built here.
import { spawn } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const roots = args.length > 0 ? args : ['packages', 'apps', 'tools', 'examples'];

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const files = roots
  .map((r) => join(root, r))
  .filter((r) => existsSync(r))
  .flatMap((r) => (statSync(r).isDirectory() ? collect(r, []) : [r]))
  .map((f) => relative(root, f))
  .sort();

if (files.length === 0) {
  console.error(`run-tests: no *.test.ts files under ${roots.join(', ')}`);
  process.exit(1);
}

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--conditions=bulwark:source', '--test', '--test-reporter=spec', '--test-timeout=300000', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
