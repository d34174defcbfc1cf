/**
 * Work-dir cleanup: the pure selection (Spark's WorkDirCleanup rules) and the
 * deletion on a real temporary directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lutimes, mkdir, readFile, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanWorkDir, newestMtime, scanWorkDir, selectDirsToClean } from '../../workers/work-dir-cleanup.ts';
import { DirHandle } from '../../workers/runtime/safe-fs.ts';
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
    const root = await DirHandle.openRoot(dir.path);
    try {
      assert.ok((await newestMtime(root, 'app-fresh', now)) > now - DAY, 'the deep new file counts');
    } finally {
      await root.close();
    }
    const entries = await scanWorkDir(dir.path);
    assert.deepEqual(entries.map((e) => e.name).sort(), ['app-fresh', 'app-old', 'app-running']);
    const { deleted, trouble } = await cleanWorkDir(dir.path, { appIds: new Set(['app-running']), driverIds: new Set() }, now, 7 * DAY);
    assert.deepEqual(deleted, ['app-old']);
    assert.equal(trouble.skipped, 0);
    await assert.rejects(stat(join(dir.path, 'app-old')), { code: 'ENOENT' });
    await stat(join(dir.path, 'app-fresh', '0', 'stderr'));
    await stat(join(dir.path, 'app-running', '1', 'stdout'));
    await stat(join(dir.path, '.flint-worker.json'));
    assert.deepEqual(await scanWorkDir(join(dir.path, 'missing')), []);
  } finally {
    await dir.cleanup();
  }
});

test('hostile trees: links are removed, never followed; a tree deeper than PATH_MAX and made-up future times do not stop the cleanup', async () => {
  const dir = await makeTempDir('cleanup-hostile');
  try {
    const now = Date.now();
    const old = new Date(now - 10 * DAY);
    const work = join(dir.path, 'work');
    const victim = join(dir.path, 'victim');
    await mkdir(join(victim, 'sub'), { recursive: true });
    await writeFile(join(victim, 'precious'), 'keep');
    await writeFile(join(victim, 'sub', 'precious'), 'keep');
    // app-links: a directory link and a file link to the victim, inside an old app dir
    await mkdir(join(work, 'app-links', '0'), { recursive: true });
    await symlink(victim, join(work, 'app-links', '0', 'd'));
    await symlink(join(victim, 'precious'), join(work, 'app-links', '0', 'f'));
    // app-deep: 30 levels of 200-character names (a path of about 6,000 bytes, past PATH_MAX)
    const segment = 'x'.repeat(200);
    await mkdir(join(work, 'app-deep'));
    const deepParts: string[][] = [['app-deep']];
    for (let level = 0; level < 30; level++) {
      const parent = deepParts.at(-1)!;
      // through handles: the path is too long for the kernel
      const handle = await DirHandle.walk(work, parent);
      await mkdir(handle.at(segment));
      await handle.close();
      deepParts.push([...parent, segment]);
    }
    // app-future: its files claim to be from next year
    await mkdir(join(work, 'app-future', '0'), { recursive: true });
    await writeFile(join(work, 'app-future', '0', 'stdout'), 'x');
    const future = new Date(now + 365 * DAY);
    for (const path of ['app-future/0/stdout', 'app-future/0', 'app-future']) await utimes(join(work, path), future, future);
    for (const path of ['app-links/0/d', 'app-links/0/f']) await lutimes(join(work, path), old, old);
    for (const path of ['app-links/0', 'app-links']) await utimes(join(work, path), old, old);
    // the deep tree is made old from the bottom up, through handles (its paths are too long)
    for (const parts of [...deepParts].reverse()) {
      const parent = await DirHandle.walk(work, parts.slice(0, -1));
      await utimes(parent.at(parts.at(-1)!), old, old);
      await parent.close();
    }

    const { deleted, trouble } = await cleanWorkDir(work, { appIds: new Set(), driverIds: new Set() }, now, 7 * DAY);
    assert.deepEqual(deleted, ['app-deep', 'app-future', 'app-links']);
    assert.equal(trouble.skipped, 0, trouble.firstError);
    assert.deepEqual(await readdir(work), []);
    assert.equal(await readFile(join(victim, 'precious'), 'utf8'), 'keep');
    assert.equal(await readFile(join(victim, 'sub', 'precious'), 'utf8'), 'keep');
  } finally {
    // after a failure the deep tree is still there, and a removal by path cannot reach its bottom
    await cleanWorkDir(join(dir.path, 'work'), { appIds: new Set(), driverIds: new Set() }, Date.now() + 2 * DAY, 0).catch(() => undefined);
    await dir.cleanup();
  }
});
