/**
 * Task supervisor for the process runtime: a small detached node process (its own
 * session and process group, not a child the agent must stay alive for) that runs one
 * task's command and records how it went, so the task outlives an agent restart and
 * its exit code is never lost.
 *
 * Run as `node task-supervisor.js <launch file>` (compiled; from a checkout's sources
 * `node --import tsx task-supervisor.ts`, see lib/package-layout.ts). It reads the launch file
 * (argv, env, workDir, labels), spawns the command directly (never through a shell) in
 * a process group of its own with stdout/stderr appended to the workDir files, writes
 * `.flint-task.json` {taskId, pid, supervisorPid, startedAt, labels} once it runs and
 * `.flint-exit.json` {exitCode, signal, finishedAt} when it ends, then exits.
 * A signal that ends the command is reported as 128 + its number, as a shell would.
 *
 * With a cgroup (cgroups.ts), the command runs through a tiny `/bin/sh` wrapper that writes
 * its own pid into the task cgroup's cgroup.procs files, tells the supervisor so on fd 3,
 * and then execs the program: the task is confined before its first instruction, with no
 * window, and `.flint-task.json` (what start() waits for) is written only once it is, so a
 * started task is always already inside its cgroup. The program is looked up on the task's
 * PATH first, so a missing one is still reported as ENOENT (exit 127). On exit the cgroup's
 * OOM-kill count is recorded as `oomKilled`.
 * A command that cannot be run at all is recorded with `error`, one line:
 * `cannot run "/x": No such file or directory`.
 */
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { parseOomKills } from './cgroups.ts';
import { TASK_FILES } from './task-identity.ts';

/** SupervisorLaunch: what the process runtime hands the supervisor (written to `.flint-launch.json`). */
export interface SupervisorLaunch {
  taskId: string;
  command: string[];
  env: Record<string, string>;
  workDir: string;
  labels: Record<string, string>;
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

/** ProcessTaskRecord: the content of `.flint-task.json`. */
export interface ProcessTaskRecord {
  taskId: string;
  pid: number;
  supervisorPid: number;
  startedAt: number;
  labels: Record<string, string>;
}

/** ProcessExitRecord: the content of `.flint-exit.json`. */
export interface ProcessExitRecord {
  exitCode: number;
  signal: string | null;
  finishedAt: number;
  /** set when the command could not be started at all */
  error?: string;
  /** the task cgroup counted an OOM kill (absent without a cgroup) */
  oomKilled?: boolean;
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

function runSupervisor(launchPath: string): void {
  const launch = JSON.parse(readFileSync(launchPath, 'utf8')) as SupervisorLaunch;
  // the env may hold secrets: it is not left on disk longer than needed
  rmSync(launchPath, { force: true });
  const stdout = openSync(join(launch.workDir, TASK_FILES.stdout), 'a');
  const stderr = openSync(join(launch.workDir, TASK_FILES.stderr), 'a');
  let finished = false;
  const finish = (record: ProcessExitRecord): void => {
    if (finished) return;
    finished = true;
    writeAtomically(join(launch.workDir, TASK_FILES.processExit), record);
    closeSync(stdout);
    closeSync(stderr);
    process.exit(0);
  };

  const oomKilled = (): boolean | undefined => {
    if (launch.cgroup === undefined) return undefined;
    try {
      return (parseOomKills(readFileSync(launch.cgroup.oomFile, 'utf8')) ?? 0) > 0;
    } catch {
      return undefined;
    }
  };

  let argv = launch.command;
  if (launch.cgroup !== undefined) {
    const program = resolveProgram(launch.command[0] as string, launch.env.PATH, launch.workDir);
    if (program === undefined) {
      const message = cannotRun(launch.command[0] as string, Object.assign(new Error('not found'), { code: 'ENOENT' }));
      writeFileSync(stderr, `flint: ${message}\n`);
      finish({ exitCode: 127, signal: null, finishedAt: Date.now(), error: message });
      return;
    }
    argv = wrapInCgroup(launch.cgroup.procsFiles, [program, ...launch.command.slice(1)]);
  }

  const confined = launch.cgroup !== undefined;
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: launch.workDir,
    env: launch.env,
    // fd 3: the cgroup wrapper says "joined" there before it execs the command
    stdio: confined ? ['ignore', stdout, stderr, 'pipe'] : ['ignore', stdout, stderr],
    // its own process group, so stop() can signal the command and everything it started
    detached: true,
  });
  let running = false;
  const recordRunning = (): void => {
    running = true;
    const record: ProcessTaskRecord = {
      taskId: launch.taskId,
      pid: child.pid as number,
      supervisorPid: process.pid,
      startedAt: Date.now(),
      labels: launch.labels,
    };
    writeAtomically(join(launch.workDir, TASK_FILES.processTask), record);
  };
  if (confined) {
    const joined = child.stdio[3] as NodeJS.ReadableStream;
    joined.once('data', () => {
      if (!finished) recordRunning();
    });
    joined.on('error', () => undefined);
  } else {
    child.on('spawn', recordRunning);
  }
  child.on('error', (error: NodeJS.ErrnoException) => {
    const message = cannotRun(launch.command[0] as string, error);
    writeFileSync(stderr, `flint: ${message}\n`);
    finish({ exitCode: error.code === 'ENOENT' ? 127 : 126, signal: null, finishedAt: Date.now(), error: message });
  });
  // 'close', not 'exit': the wrapper's "joined" on fd 3 is read before it
  child.on('close', (code, signal) => {
    const record: ProcessExitRecord = { exitCode: exitCodeOf(code, signal), signal, finishedAt: Date.now() };
    // the wrapper ended before the command ran: it could not join the task cgroup (its stderr says which)
    if (confined && !running) record.error = `cannot run ${JSON.stringify(launch.command[0])}: could not join the task cgroup`;
    const oom = oomKilled();
    if (oom !== undefined) record.oomKilled = oom;
    finish(record);
  });

  // a signal to the supervisor itself goes to the task, whose exit is still recorded
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      }
    });
  }
}

const launchPath = process.argv[2];
if (launchPath !== undefined && /task-supervisor\.[jt]s$/.test(process.argv[1] ?? '')) runSupervisor(launchPath);
