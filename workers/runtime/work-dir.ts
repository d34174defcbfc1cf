/**
 * The task's workDir is the only host path a task can touch, so it is resolved
 * (symlinks followed) before use and refused when it lands on a system path:
 * a workDir that is a symlink to /etc must never become a bind mount of /etc.
 */
import { mkdir, realpath } from 'node:fs/promises';
import { posix } from 'node:path';

/** SENSITIVE_TREES: a workDir may be neither these nor anything below them. */
const SENSITIVE_TREES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/run', '/sbin', '/sys', '/usr', '/var/run', '/var/lib/docker', '/var/lib/containerd'];

/** SENSITIVE_ROOTS: a workDir may be below these but not one of them (mounting all of /tmp or /home is too much). */
const SENSITIVE_ROOTS = ['/', '/home', '/mnt', '/media', '/opt', '/root', '/srv', '/tmp', '/var', '/var/lib', '/var/tmp'];

/** workDirProblem says why a resolved absolute path cannot be a task's workDir, or undefined when it can. */
export function workDirProblem(resolvedPath: string): string | undefined {
  if (!resolvedPath.startsWith('/')) return `workDir ${resolvedPath} is not absolute`;
  const normal = posix.normalize(resolvedPath).replace(/\/+$/, '') || '/';
  if (SENSITIVE_ROOTS.includes(normal)) return `workDir resolves to ${normal}, a system directory`;
  for (const tree of SENSITIVE_TREES) {
    if (normal === tree || normal.startsWith(`${tree}/`)) return `workDir resolves to ${normal}, inside the system directory ${tree}`;
  }
  return undefined;
}

/** resolveWorkDir creates the workDir if needed and returns its real path, or throws when that path is sensitive. */
export async function resolveWorkDir(workDir: string): Promise<string> {
  // check the path as written first, so a refused path is never created
  const lexicalProblem = workDirProblem(workDir);
  if (lexicalProblem !== undefined) throw new Error(`refusing task workDir ${workDir}: ${lexicalProblem}`);
  await mkdir(workDir, { recursive: true });
  const resolved = await realpath(workDir);
  const problem = workDirProblem(resolved);
  if (problem !== undefined) throw new Error(`refusing task workDir ${workDir}: ${problem}`);
  return resolved;
}
