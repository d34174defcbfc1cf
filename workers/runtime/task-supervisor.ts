/**
 * Task supervisor for the process runtime: a small detached node process (its own
 * session and process group, not a child the agent must stay alive for) that runs one
 * task's command and records how it went, so the task outlives an agent restart and
 * its exit code is never lost.
 *
 * Run as `node task-supervisor.js <launch file>` (compiled; from a checkout's sources
 * `node --import tsx task-supervisor.ts`, see lib/package-layout.ts). It reads the launch file
 * (in the agent's own directory for the task, mode 0600, deleted once read: the
 * environment may hold secrets), spawns the command directly (never through a shell) in a
 * process group of its own, in the task's directory, and writes, in the agent's directory
 * for the task (never the task's), `task.json` {taskId, pid, supervisorPid, startedAt,
 * labels} once it runs and `exit.json` {exitCode, signal, finishedAt} when it ends, then
 * exits. A signal that ends the command is reported as 128 + its number, as a shell would.
 *
 * Output. The command's stdout and stderr are pipes; the supervisor writes them to `stdout`
 * and `stderr` in the task's directory (supervisor-output.ts: rolled as
 * spark.executor.logs.rolling.* says, reached through a directory handle, never through a
 * link). A task that puts a link, FIFO or device in place of one of them is killed and its
 * exit recorded with `refused`.
 *
 * User. When the supervisor is root and a task user is given, the command runs as that user
 * through util-linux's `setpriv` (no supplementary groups, no-new-privileges, as Docker's
 * no-new-privileges), after joining its cgroup as root.
 *
 * With a cgroup (cgroups.ts), the command runs through a tiny `/bin/sh` wrapper that writes
 * its own pid into the task cgroup's cgroup.procs files, tells the supervisor so on fd 3,
 * and then execs the program: the task is confined before its first instruction, with no
 * window, and `task.json` (what start() waits for) is written only once it is, so a
 * started task is always already inside its cgroup. The program is looked up on the task's
 * PATH first, so a missing one is still reported as ENOENT (exit 127). On exit the cgroup's
 * OOM-kill count is recorded as `oomKilled`.
 * A command that cannot be run at all is recorded with `error`, one line:
 * `cannot run "/x": No such file or directory`.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { parseOomKills } from './cgroups.ts';
import type { LogRolling } from './log-rolling.ts';
import { DirHandle, UnsafeFileError, type TaskDirRef } from './safe-fs.ts';
import { TaskOutput } from './supervisor-output.ts';
import { PRIVATE_FILES } from './task-identity.ts';
import type { TaskUser } from './task-user.ts';

/** SupervisorLaunch: what the process runtime hands the supervisor (the launch file). */
export interface SupervisorLaunch {
  taskId: string;
  command: string[];
  env: Record<string, string>;
  /** the task's directory: its real path (informational) and how to reach it without following links */
  workDir: string;
  taskDir: TaskDirRef;
  /** the agent's own directory for the task: the records go here */
  privateDir: string;
  labels: Record<string, string>;
  /** run the command as this user (only when the supervisor is root) */
  user?: TaskUser;
  /** Spark's rolling executor logs */
  rolling?: LogRolling;
  /** the task's cgroup, when limits are enforced */
  cgroup?: { procsFiles: string[]; oomFile: string };
}

/** CGROUP_WRAPPER: `sh -c` script that joins the cgroups named by its arguments, then execs the rest. */
export const CGROUP_WRAPPER =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || { echo "flint: cannot join cgroup $1" >&2; exit 125; }; shift; n=$((n-1)); done; echo joined >&3; exec 3>&-; exec "$@"';

/** wrapInCgroup is the argv that runs `command` inside the cgroups whose cgroup.procs files are given. */
export function wrapInCgroup(procsFiles: string[], command: string[]): string[] {
  return ['/bin/sh', '-c', CGROUP_WRAPPER, 'flint-cgroup', String(procsFiles.length), ...procsFiles, ...command];
}

/**
 * LOADER_VARIABLES: variables that make a dynamically linked program or a shell load or run
 * code the caller names (glibc ignores them only in setuid programs). The stages that still
 * run as root (the cgroup wrapper, setpriv) must never see a task's values: a task could set
 * LD_PRELOAD to a library it wrote and run it as root. They are handed to the task after the
 * user switch, by `env NAME=VALUE... program` running as the task's user.
 */
export const LOADER_VARIABLES = /^(LD_\w*|GCONV_PATH|GETCONF_DIR|HOSTALIASES|LOCALDOMAIN|LOCPATH|MALLOC_\w*|GLIBC_TUNABLES|NIS_PATH|NLSPATH|RESOLV_HOST_CONF|RES_OPTIONS|TMPDIR|TZDIR|ENV|BASH_ENV|IFS|CDPATH|SHELLOPTS|BASHOPTS|PS4)$/;

/** splitLoaderVariables: the environment the root stages may see, and the loader variables as `NAME=VALUE` for after the switch. */
export function splitLoaderVariables(env: Record<string, string>): { rootEnv: Record<string, string>; deferred: string[] } {
  const rootEnv: Record<string, string> = {};
  const deferred: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (LOADER_VARIABLES.test(name)) deferred.push(`${name}=${value}`);
    else rootEnv[name] = value;
  }
  return { rootEnv, deferred };
}

/** asUser is the argv that runs `command` as `user` (setpriv: no supplementary groups, no new privileges). */
export function asUser(setpriv: string, user: TaskUser, command: string[]): string[] {
  return [setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--no-new-privs', '--', ...command];
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** resolveProgram finds a program as execvp would (on the task's PATH unless it names a path), or undefined. */
export function resolveProgram(program: string, path: string | undefined, cwd: string): string | undefined {
  if (program.includes('/')) {
    const full = program.startsWith('/') ? program : join(cwd, program);
    return isExecutableFile(full) ? full : undefined;
  }
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const full = join(dir === '' ? cwd : dir.startsWith('/') ? dir : join(cwd, dir), program);
    if (isExecutableFile(full)) return full;
  }
  return undefined;
}

/** ProcessTaskRecord: the content of `task.json`. */
export interface ProcessTaskRecord {
  taskId: string;
  pid: number;
  supervisorPid: number;
  startedAt: number;
  labels: Record<string, string>;
}

/** ProcessExitRecord: the content of `exit.json`. */
export interface ProcessExitRecord {
  exitCode: number;
  signal: string | null;
  finishedAt: number;
  /** set when the command could not be started at all */
  error?: string;
  /** the task cgroup counted an OOM kill (absent without a cgroup) */
  oomKilled?: boolean;
  /** the task tampered with a file the supervisor writes and was killed: why */
  refused?: string;
}

/** cannotRun: the one-line reason a program could not be run, as a shell would say it. */
export function cannotRun(program: string, error: NodeJS.ErrnoException): string {
  const reasons: Record<string, string> = { ENOENT: 'No such file or directory', EACCES: 'Permission denied', ENOEXEC: 'Exec format error', ENOTDIR: 'Not a directory' };
  return `cannot run ${JSON.stringify(program)}: ${(error.code !== undefined && reasons[error.code]) || error.message.replace(/\s+/g, ' ')}`;
}

/** exitCodeOf follows the shell convention: a normal exit keeps its code, a signal becomes 128 + its number. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const number = signal === null ? undefined : (constants.signals as Record<string, number>)[signal];
  return number === undefined ? 255 : 128 + number;
}

function writeAtomically(path: string, value: unknown): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(value));
  renameSync(temporary, path);
}

/** OUTPUT_DRAIN_MS: how long after the command's exit its output may still arrive (a child that kept the pipes is not waited for longer). */
const OUTPUT_DRAIN_MS = 2000;

async function runSupervisor(launchPath: string): Promise<void> {
  const launch = JSON.parse(readFileSync(launchPath, 'utf8')) as SupervisorLaunch;
  // the env may hold secrets: it is not left on disk longer than needed
  rmSync(launchPath, { force: true });
  const record = (name: string, value: unknown) => writeAtomically(join(launch.privateDir, name), value);
  let finished = false;
  const finish = (exit: ProcessExitRecord): never => {
    finished = true;
    record(PRIVATE_FILES.processExit, exit);
    process.exit(0);
  };
  const notStarted = (message: string, exitCode: number, refused?: string): never => finish({ exitCode, signal: null, finishedAt: Date.now(), error: message, ...(refused === undefined ? {} : { refused }) });

  let dir: DirHandle;
  let output: TaskOutput;
  try {
    dir = await DirHandle.walk(launch.taskDir.root, launch.taskDir.parts);
    output = await TaskOutput.open(dir, launch.taskDir, launch.rolling);
  } catch (error) {
    if (error instanceof UnsafeFileError) notStarted(`the task directory is refused: ${error.message}`, 126, error.message);
    notStarted(`cannot open the task directory: ${(error as Error).message}`, 126);
  }

  const oomKilled = (): boolean | undefined => {
    if (launch.cgroup === undefined) return undefined;
    try {
      return (parseOomKills(readFileSync(launch.cgroup.oomFile, 'utf8')) ?? 0) > 0;
    } catch {
      return undefined;
    }
  };

  const switchUser = launch.user !== undefined && process.geteuid?.() === 0;
  const confined = launch.cgroup !== undefined;
  let argv = launch.command;
  // the environment of the first program spawned; without loader variables when it runs as root
  let stageEnv = launch.env;
  // `/proc/self/fd/<n>`: the child changes into the very directory held open, never a path that may have changed
  const cwd = `/proc/self/fd/${dir!.fd}`;
  if (confined || switchUser) {
    const program = resolveProgram(launch.command[0] as string, launch.env.PATH, launch.workDir);
    if (program === undefined) {
      const message = cannotRun(launch.command[0] as string, Object.assign(new Error('not found'), { code: 'ENOENT' }));
      await output!.note('stderr', `flint: ${message}\n`);
      await output!.close();
      notStarted(message, 127);
    }
    argv = [program!, ...launch.command.slice(1)];
    if (switchUser) {
      const setpriv = resolveProgram('setpriv', process.env.PATH ?? '/usr/bin:/bin', '/');
      if (setpriv === undefined) notStarted(`cannot run the task as ${launch.user!.uid}:${launch.user!.gid}: setpriv (util-linux) is not installed`, 126);
      const { rootEnv, deferred } = splitLoaderVariables(launch.env);
      if (deferred.length > 0) {
        const envProgram = resolveProgram('env', process.env.PATH ?? '/usr/bin:/bin', '/');
        if (envProgram === undefined) notStarted('cannot hand the loader variables (LD_*, ...) to the task: env (coreutils) is not installed', 126);
        if (program!.includes('=')) notStarted(`cannot run "${program}" with loader variables (LD_*, ...): its path contains '='`, 126);
        argv = [envProgram!, ...deferred, ...argv];
      }
      argv = asUser(setpriv!, launch.user!, argv);
      stageEnv = rootEnv;
    }
    if (confined) argv = wrapInCgroup(launch.cgroup!.procsFiles, argv);
  }

  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd,
    env: stageEnv,
    // fd 3: the cgroup wrapper says "joined" there before it execs the command
    stdio: confined ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    // its own process group, so stop() can signal the command and everything it started
    detached: true,
  });
  const killGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  // a task that tampered with its files is killed at once: a hostile task gets no grace
  output!.relay(child.stdout!, child.stderr!, () => killGroup('SIGKILL'));

  let running = false;
  const recordRunning = (): void => {
    running = true;
    const task: ProcessTaskRecord = { taskId: launch.taskId, pid: child.pid as number, supervisorPid: process.pid, startedAt: Date.now(), labels: launch.labels };
    record(PRIVATE_FILES.processTask, task);
  };
  const joinedSeen = new Promise<void>((resolve) => {
    if (!confined) {
      child.on('spawn', () => {
        recordRunning();
        resolve();
      });
      return;
    }
    const joined = child.stdio[3] as NodeJS.ReadableStream;
    joined.once('data', () => {
      if (!finished) recordRunning();
    });
    joined.on('error', () => undefined);
    joined.on('close', () => resolve());
  });
  let spawnFailed = false;
  child.on('error', (error: NodeJS.ErrnoException) => {
    if (running) return; // a failed kill of a running command: its exit still comes
    spawnFailed = true;
    const message = cannotRun(launch.command[0] as string, error);
    void output.note('stderr', `flint: ${message}\n`).finally(() => output.close().finally(() => notStarted(message, error.code === 'ENOENT' ? 127 : 126)));
  });
  child.on('exit', (code, signal) => {
    if (spawnFailed) return;
    void (async () => {
      if (confined) await joinedSeen;
      const refused = await output.drain(OUTPUT_DRAIN_MS);
      const exit: ProcessExitRecord = { exitCode: exitCodeOf(code, signal), signal, finishedAt: Date.now() };
      // the wrapper ended before the command ran: it could not join the task cgroup (its stderr says which)
      if (confined && !running) exit.error = `cannot run ${JSON.stringify(launch.command[0])}: could not join the task cgroup`;
      if (refused !== undefined) exit.refused = refused;
      const oom = oomKilled();
      if (oom !== undefined) exit.oomKilled = oom;
      finish(exit);
    })();
  });

  // a signal to the supervisor itself goes to the task, whose exit is still recorded
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => killGroup(signal));
}

const launchPath = process.argv[2];
if (launchPath !== undefined && /task-supervisor\.[jt]s$/.test(process.argv[1] ?? '')) {
  runSupervisor(launchPath).catch((error: unknown) => {
    process.stderr.write(`flint task supervisor: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
