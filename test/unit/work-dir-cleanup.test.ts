/**
 * Work-dir cleanup: the pure selection (Spark's WorkDirCleanup rules) and the
 * deletion on a real temporary directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanWorkDir, newestMtime, scanWorkDir, selectDirsToClean } from '../../workers/work-dir-cleanup.ts';
import { makeTempDir } from '../helpers/isolation.ts';

const DAY = 24 * 3600 * 1000;

test('selection: old and idle directories go; running apps, running drivers, recent files and dot-dirs stay', () => {
  const now = 10 * DAY;
  const doomed = selectDirsToClean({
    entries: [
      { name: 'app-1', newestMtimeMs: 1 * DAY },
      { name: 'app-2', newestMtimeMs: 5 * DAY },
      { name: 'app-3', newestMtimeMs: 1 * DAY },
      { name: 'driver-1', newestMtimeMs: 0 },
      { name: 'driver-2', newestMtimeMs: 0 },
      { name: '.flint-process-runtime', newestMtimeMs: 0 },
      { name: 'app-4', newestMtimeMs: 3 * DAY },
    ],
    runningAppIds: new Set(['app-3']),
    runningDriverIds: new Set(['driver-1']),
    now,
    ttlMs: 7 * DAY,
  });
  assert.deepEqual(doomed, ['app-1', 'app-4', 'driver-2']);
});

test('selection with TTL 0 deletes every idle directory not in use', () => {
  assert.deepEqual(
    selectDirsToClean({
      entries: [{ name: 'b', newestMtimeMs: 100 }, { name: 'a', newestMtimeMs: 100 }],
      runningAppIds: new Set(),
      runningDriverIds: new Set(),
      now: 100,
      ttlMs: 0,
    }),
    ['a', 'b'],
  );
});

test('deletion on a temp dir: only the old, unused app directory is removed', async () => {
  const dir = await makeTempDir('cleanup');
  try {
    const now = Date.now();
    const old = new Date(now - 10 * DAY);
    // app-old: every file old
    await mkdir(join(dir.path, 'app-old', '0'), { recursive: true });
    await writeFile(join(dir.path, 'app-old', '0', 'stdout'), 'x');
    // app-fresh: one deep file is new
    await mkdir(join(dir.path, 'app-fresh', '0'), { recursive: true });
    await writeFile(join(dir.path, 'app-fresh', '0', 'stderr'), 'y');
    // app-running: old but an executor runs
    await mkdir(join(dir.path, 'app-running', '1'), { recursive: true });
    await writeFile(join(dir.path, 'app-running', '1', 'stdout'), 'z');
    // a plain file at the top is never touched
    await writeFile(join(dir.path, '.flint-worker.json'), '{}');
    for (const path of ['app-old/0/stdout', 'app-old/0', 'app-old', 'app-fresh/0', 'app-fresh', 'app-running/1/stdout', 'app-running/1', 'app-running']) {
      await utimes(join(dir.path, path), old, old);
    }
    assert.ok((await newestMtime(join(dir.path, 'app-fresh'))) > now - DAY, 'the deep new file counts');
    const entries = await scanWorkDir(dir.path);
    assert.deepEqual(entries.map((e) => e.name).sort(), ['app-fresh', 'app-old', 'app-running']);
    const deleted = await cleanWorkDir(dir.path, { appIds: new Set(['app-running']), driverIds: new Set() }, now, 7 * DAY);
    assert.deepEqual(deleted, ['app-old']);
    await assert.rejects(stat(join(dir.path, 'app-old')), { code: 'ENOENT' });
    await stat(join(dir.path, 'app-fresh', '0', 'stderr'));
    await stat(join(dir.path, 'app-running', '1', 'stdout'));
    await stat(join(dir.path, '.flint-worker.json'));
    assert.deepEqual(await scanWorkDir(join(dir.path, 'missing')), []);
  } finally {
    await dir.cleanup();
  }
});
