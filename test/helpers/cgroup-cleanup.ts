/**
 * removeClusterCgroups: the process runtime's cgroups of one test cluster
 * (`<controller>/flint/<cluster>/…`), whatever still lives in them killed first, removed
 * deepest first; Flint's parent goes too once it is empty (another run may still use it).
 * Cgroups are the host's, not the test's temp dir: a test that leaves them leaks kernel
 * objects for every run.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

const CGROUP_ROOTS = ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];

/** removeCgroupTree kills what lives in a cgroup tree and removes it deepest first. */
export async function removeCgroupTree(dir: string): Promise<void> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return;
  for (const entry of await readdir(dir, { withFileTypes: true })) if (entry.isDirectory()) await removeCgroupTree(join(dir, entry.name));
  for (let attempt = 0; attempt < 40; attempt++) {
    for (const pid of (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    try {
      await rmdir(dir);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

export async function removeClusterCgroups(clusters: readonly string[]): Promise<void> {
  for (const root of CGROUP_ROOTS) {
    for (const cluster of clusters) await removeCgroupTree(join(root, 'flint', cluster));
    await rmdir(join(root, 'flint')).catch(() => undefined); // only when empty
  }
}
