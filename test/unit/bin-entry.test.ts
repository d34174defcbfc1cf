/**
 * bin/flint.js chooses what to run by what is beside it: a tree holding the
 * TypeScript sources (a git checkout) runs them, even when a dist/ is there too,
 * so it can never run compiled code older than the sources; a tree without
 * sources (the installed package) runs dist/. Checked on a copy of bin/flint.js in
 * a scratch tree whose two entry points say which of them ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/flint-process.ts';

function scratchTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'flint-bin-entry-'));
  mkdirSync(join(root, 'bin'));
  copyFileSync(join(REPO_ROOT, 'bin', 'flint.js'), join(root, 'bin', 'flint.js'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ type: 'module' }));
  // tsx, for the sources, comes from the checkout's dev dependencies
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
  writeFileSync(join(root, 'dist', 'cli', 'main.js'), 'export async function main(argv) { process.stdout.write(`compiled ${argv.join(" ")}\\n`); return 3; }\n');
  return root;
}

function runBin(root: string): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [join(root, 'bin', 'flint.js'), 'a', 'b'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('a tree with the sources runs them through tsx, even beside a dist/', () => {
  const root = scratchTree();
  try {
    mkdirSync(join(root, 'cli'));
    // a type annotation: only a TypeScript loader can run this file
    writeFileSync(join(root, 'cli', 'main.ts'), 'export async function main(argv: string[]): Promise<number> { process.stdout.write(`sources ${argv.join(" ")}\\n`); return 4; }\n');
    const run = runBin(root);
    assert.equal(run.stdout, 'sources a b\n', run.stderr);
    assert.equal(run.code, 4, 'the exit code is main()\'s');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a tree without the sources runs dist/', () => {
  const root = scratchTree();
  try {
    const run = runBin(root);
    assert.equal(run.stdout, 'compiled a b\n', run.stderr);
    assert.equal(run.code, 3);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
