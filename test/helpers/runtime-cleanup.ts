/**
 * runtimeCleanup: what a test file that drives runtimes directly leaves behind, removed
 * after its tests (also after a failure): the runtimes it made (closed), the containers of
 * its clusters (by the cluster label, unique per test), their process-runtime cgroups and its
 * temporary directories.
 */
import { after } from 'node:test';
import { rm } from 'node:fs/promises';
import type { Runtime } from '../../workers/runtime/types.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { removeContainersByLabel } from './isolation.ts';
import { removeClusterCgroups } from './cgroup-cleanup.ts';

export interface RuntimeCleanup {
  clusters: string[];
  dirs: string[];
  runtimes: Runtime[];
}

/** runtimeCleanup registers an `after` hook and returns the lists it empties; `before` runs first (e.g. to kill leftover processes). */
export function runtimeCleanup(before?: () => Promise<void>): RuntimeCleanup {
  const cleanup: RuntimeCleanup = { clusters: [], dirs: [], runtimes: [] };
  after(async () => {
    await Promise.all(cleanup.runtimes.map((runtime) => runtime.close().catch(() => undefined)));
    for (const cluster of cleanup.clusters) await removeContainersByLabel(LABEL.cluster, cluster).catch(() => undefined);
    await before?.();
    await removeClusterCgroups(cleanup.clusters);
    await Promise.all(cleanup.dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return cleanup;
}
