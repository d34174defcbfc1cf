/**
 * Who a task runs as (spark.flint.executor.user): an unprivileged uid:gid by default
 * (65534:65534, nobody:nogroup), in a container (Docker's User) and, when the agent is root,
 * as a local process. Root (uid or gid 0) needs the worker's explicit permission
 * (spark.flint.worker.allowRootTasks). Numeric only: the task's directory is given to that
 * uid and gid on the host, where an image's user names mean nothing.
 */

/** TaskUser: a numeric user and group. */
export interface TaskUser {
  uid: number;
  gid: number;
}

/** DEFAULT_TASK_USER: nobody:nogroup on Debian. */
export const DEFAULT_TASK_USER = '65534:65534';

/** parseTaskUser: `uid:gid`, or `uid` (the group then has the same number). */
export function parseTaskUser(text: string): TaskUser {
  const match = /^\s*(\d{1,10})(?::(\d{1,10}))?\s*$/.exec(text);
  if (match === null) throw new TypeError(`task user '${text}' is not uid:gid (numbers, e.g. 65534:65534)`);
  const uid = Number(match[1]);
  const gid = match[2] === undefined ? uid : Number(match[2]);
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new TypeError(`task user '${text}' is out of range`);
  return { uid, gid };
}

/** isRoot: the user or its group is root's. */
export function isRoot(user: TaskUser): boolean {
  return user.uid === 0 || user.gid === 0;
}

/**
 * resolveTaskUser parses the setting and refuses root unless allowed, with one line that
 * names both keys.
 */
export function resolveTaskUser(text: string | undefined, allowRoot: boolean): TaskUser {
  const user = parseTaskUser(text ?? DEFAULT_TASK_USER);
  if (isRoot(user) && !allowRoot) {
    throw new TypeError(`tasks may not run as root (spark.flint.executor.user=${text}): set spark.flint.worker.allowRootTasks=true on this worker to allow it`);
  }
  return user;
}

/** dockerUser: the user as Docker's User field. */
export function dockerUser(user: TaskUser): string {
  return `${user.uid}:${user.gid}`;
}
