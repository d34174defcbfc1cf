/**
 * launchSupervisor: how the process runtime starts one task: fresh stdout and stderr (with
 * Spark's header) in its directory (written through a directory handle: a previous run's
 * link in their place is refused), the task's cgroup with its grant (process-limits.ts), a
 * launch file only the supervisor reads (in the agent's own directory for the task; the
 * environment may hold secrets: mode 0600, deleted by the supervisor once read), and the
 * detached supervisor (task-supervisor.ts) that runs the command and records how it went.
 * The task's environment is its own plus a few of the agent's (ENV_PASSED_THROUGH):
 * nothing else of the agent's reaches it.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../lib/log.ts';
import { nodeArgsForModule } from '../../lib/package-layout.ts';
import { limitsFor, type TaskCgroups } from './cgroups.ts';
import { RollingLogFile, type LogRolling } from './log-rolling.ts';
import { writeJsonAtomically, type RegistryEntry } from './process-registry.ts';
import { UnsafeFileError } from './safe-fs.ts';
import { PRIVATE_FILES, TASK_FILES, stderrHeader } from './task-identity.ts';
import type { SupervisorLaunch } from './task-supervisor.ts';
import type { TaskUser } from './task-user.ts';
import { TaskStartError, type TaskSpec } from './types.ts';
import type { OpenedTaskDir } from './work-dir.ts';

/** ENV_PASSED_THROUGH: the agent's variables a local process gets (plus the spec's env); nothing else leaks in. */
export const ENV_PASSED_THROUGH = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'JAVA_HOME', 'SPARK_HOME', 'USER', 'LOGNAME'];

/** supervisorNodeArgs: how node runs task-supervisor (compiled, or its source through tsx in a checkout; lib/package-layout.ts). */
const supervisorNodeArgs = () => nodeArgsForModule(fileURLToPath(new URL('./task-supervisor', import.meta.url)));

export interface LaunchOptions {
  /** the task's cgroup operations when limits are enforced */
  cgroups: TaskCgroups | undefined;
  /** where the task's cgroup lives */
  cgroupPath: string;
  requireLimits?: boolean;
  addressSpaceLimit?: boolean;
  /** run the command as this user (applied when the agent is root) */
  user?: TaskUser;
  rolling?: LogRolling;
  logger?: Logger;
}

/** taskEnv: the task's environment: a few of the agent's variables, then the spec's own. */
export function taskEnv(spec: Pick<TaskSpec, 'env'>, agentEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ENV_PASSED_THROUGH) {
    const value = agentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...spec.env };
}

/** prepareOutput lays out fresh stdout and stderr (with Spark's header); a tampered name is a TaskStartError. */
async function prepareOutput(taskDir: OpenedTaskDir, spec: TaskSpec, rolling: LogRolling | undefined): Promise<void> {
  try {
    await (await RollingLogFile.create(taskDir.dir, TASK_FILES.stdout, rolling)).close();
    await (await RollingLogFile.create(taskDir.dir, TASK_FILES.stderr, rolling, Buffer.from(stderrHeader(spec)))).close();
  } catch (error) {
    if (error instanceof UnsafeFileError) throw new TaskStartError(`a file in the task directory is refused: ${error.message}`, { cause: error });
    throw error;
  }
}

/** launchSupervisor lays out the task's files and cgroup and spawns its supervisor; returns the supervisor's pid. */
export async function launchSupervisor(spec: TaskSpec, entry: RegistryEntry, taskDir: OpenedTaskDir, options: LaunchOptions): Promise<number | undefined> {
  const { privateDir } = entry;
  await mkdir(privateDir, { recursive: true, mode: 0o700 });
  for (const file of [PRIVATE_FILES.processTask, PRIVATE_FILES.processExit, PRIVATE_FILES.stopRequested, PRIVATE_FILES.refused]) {
    await rm(join(privateDir, file), { force: true });
  }
  await prepareOutput(taskDir, spec, options.rolling);
  const launchPath = join(privateDir, PRIVATE_FILES.launch);
  const launch: SupervisorLaunch = {
    taskId: spec.taskId,
    command: options.addressSpaceLimit === true ? ['prlimit', `--as=${spec.memoryMB * 1024 * 1024}`, '--', ...spec.command] : spec.command,
    env: taskEnv(spec),
    workDir: entry.workDir,
    taskDir: taskDir.ref,
    privateDir,
    labels: entry.labels,
  };
  if (options.user !== undefined) launch.user = options.user;
  if (options.rolling !== undefined) launch.rolling = options.rolling;
  if (options.cgroups !== undefined) {
    try {
      const cgroup = await options.cgroups.create(options.cgroupPath, limitsFor(spec.cores, spec.memoryMB, spec.pidsLimit));
      launch.cgroup = { procsFiles: cgroup.procsFiles, oomFile: cgroup.oomFile };
    } catch (error) {
      if (options.requireLimits === true) {
        await options.cgroups.remove(options.cgroupPath).catch(() => undefined);
        throw new Error(`cannot create the cgroup of task ${spec.taskId}: ${(error as Error).message}`, { cause: error });
      }
      options.logger?.warn({ err: error, taskId: spec.taskId }, 'cannot create the task cgroup: the task runs without cores, memory or pids limits');
    }
  }
  await writeJsonAtomically(launchPath, launch, 0o600);
  const supervisor = spawn(process.execPath, [...supervisorNodeArgs(), launchPath], {
    cwd: privateDir,
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  supervisor.unref();
  return supervisor.pid;
}
