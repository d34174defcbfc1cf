/**
 * lib/idle-memory.ts switches V8 flags at run time; what it must leave behind is
 * nothing: no `gc` global in the process's context or in later contexts, and the
 * collection it schedules does not keep the process alive. (What it saves is a
 * benchmark figure, bench/startup.ts, not something a test times.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../helpers/flint-process.ts';

test('holding and releasing start-up memory leaves no gc function anywhere and does not keep the process alive', () => {
  const script = `
    import { runInNewContext } from 'node:vm';
    import { holdYoungGenerationWhileLoading, releaseStartupMemory } from './lib/idle-memory.ts';
    holdYoungGenerationWhileLoading();
    const garbage = Array.from({ length: 200000 }, (_, i) => ({ i, text: 'x'.repeat(i % 50) }));
    releaseStartupMemory();
    // the collection runs later, on an unref'd timer: keep the process up past it
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ mainContext: typeof globalThis.gc, newContext: runInNewContext('typeof gc'), items: garbage.length }));
    }, 5500);
  `;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { mainContext: 'undefined', newContext: 'undefined', items: 200000 });

  // without the long timer the process ends at once: the scheduled collection does not hold it
  const quick = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { releaseStartupMemory } from './lib/idle-memory.ts';
    const started = Date.now();
    releaseStartupMemory();
    process.on('exit', () => process.stdout.write(String(Date.now() - started)));
  `], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(quick.status, 0, quick.stderr);
  assert.ok(Number(quick.stdout) < 4000, `the process ended ${quick.stdout} ms after scheduling, before the collection's 5 s timer`);
});
