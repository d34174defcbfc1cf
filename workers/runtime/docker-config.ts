/**
 * The pure half of the Docker runtime: the create request of a task (limits and
 * hardening), Docker's view of a container turned into the runtime's TaskStatus, and the
 * one-line reasons a start failed. No I/O here; docker.ts does the calls.
 */
import type Docker from 'dockerode';
import { LABEL, taskLabels, taskName } from './task-identity.ts';
import { DEFAULT_TASK_USER, dockerUser, parseTaskUser, type TaskUser } from './task-user.ts';
import type { TaskSpec, TaskStatus } from './types.ts';

/** DockerTaskOptions: the runtime options that shape a container. */
export interface DockerTaskOptions {
  /** where the workDir appears inside the container: the same path (default) or a fixed one such as /flint/work */
  containerWorkDir?: 'same-path' | string;
  /** mount the container's root filesystem read-only (spark.flint.executor.readOnlyRootFilesystem; the workDir and /tmp stay writable) */
  readonlyRootfs?: boolean;
  /** who the task runs as (default 65534:65534; task-user.ts) */
  user?: TaskUser;
  /** Docker's own copy of the output, the capture's buffer (default 16 MiB, DEFAULT_LOG_BUFFER_BYTES) */
  logBufferBytes?: number;
}

/**
 * DEFAULT_LOG_BUFFER_BYTES: Docker's own copy of a container's output (json-file, which the
 * log capture reads through the logs API; spark.flint.worker.dockerLogBuffer) is capped,
 * two files of half this each. The files in the task's directory (rolled as configured)
 * are the logs; Docker's copy is only the buffer between the container and the capture,
 * deleted with the container, so it cannot fill the disk either. What a task prints faster
 * than Docker delivers it (its log follower manages 10-20 MB/s on a small host) beyond the
 * buffer, or while the agent is down, is lost: a larger buffer costs that much disk per
 * running container.
 */
export const DEFAULT_LOG_BUFFER_BYTES = 16 * 1024 * 1024;

/** dockerLogConfig: the json-file log driver capped at `bytes` (two files). */
export function dockerLogConfig(bytes: number): { Type: string; Config: Record<string, string> } {
  return { Type: 'json-file', Config: { 'max-size': `${Math.max(1, Math.ceil(bytes / 2 / 1024))}k`, 'max-file': '2' } };
}

/**
 * ContainerPhase: what a container is, as a task.
 *   running: started and not ended (paused and restarting count as running);
 *   exited: it ran and stopped (exited, dead, being removed);
 *   never-started: created but never started: an ended task in which nothing ran.
 */
export type ContainerPhase = 'running' | 'exited' | 'never-started';

const NO_TIME = '0001-01-01T00:00:00Z';

/** containerPhase classifies Docker's State of a container. */
export function containerPhase(state: Pick<Docker.ContainerInspectInfo['State'], 'Status' | 'Running' | 'Restarting'>): ContainerPhase {
  if (state.Running || state.Restarting || state.Status === 'running' || state.Status === 'paused' || state.Status === 'restarting') return 'running';
  if (state.Status === 'created') return 'never-started';
  return 'exited';
}

/** listedPhase: the same for a container as `docker ps` (listContainers) shows it. */
export function listedPhase(state: string): ContainerPhase {
  if (state === 'running' || state === 'paused' || state === 'restarting') return 'running';
  if (state === 'created') return 'never-started';
  return 'exited';
}

function parseDockerTime(text: string | undefined): number | undefined {
  if (text === undefined || text === '' || text === NO_TIME || text.startsWith('0001-01-01')) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** statusFromInspect converts Docker's view of a container into the runtime's TaskStatus. */
export function statusFromInspect(info: Docker.ContainerInspectInfo): TaskStatus {
  const labels = info.Config.Labels ?? {};
  const phase = containerPhase(info.State);
  const status: TaskStatus = {
    taskId: labels[LABEL.task] ?? info.Name.replace(/^\//, ''),
    handle: info.Id,
    running: phase === 'running',
    labels,
  };
  if (phase === 'exited') {
    status.exitCode = info.State.ExitCode;
    status.oomKilled = info.State.OOMKilled;
  }
  if (phase === 'never-started') status.neverStarted = true;
  if (info.State.Error) status.error = oneLine(info.State.Error);
  const startedAt = parseDockerTime(info.State.StartedAt);
  if (startedAt !== undefined) status.startedAt = startedAt;
  const finishedAt = phase === 'exited' ? parseDockerTime(info.State.FinishedAt) : undefined;
  if (finishedAt !== undefined) status.finishedAt = finishedAt;
  return status;
}

/**
 * containerConfig is the create request for a task: limits and hardening live here. The
 * task runs as an unprivileged user under Docker's init, with no capabilities, no way to
 * gain privileges, its own tmpfs /tmp, optionally a read-only root filesystem, and its
 * directory as the only host path.
 */
export function containerConfig(spec: TaskSpec, hostWorkDir: string, options: DockerTaskOptions, workRoot?: string): Docker.ContainerCreateOptions {
  const target = options.containerWorkDir === undefined || options.containerWorkDir === 'same-path' ? hostWorkDir : options.containerWorkDir;
  const memoryBytes = spec.memoryMB * 1024 * 1024;
  return {
    name: taskName(spec.cluster, spec.kind, spec.taskId),
    Image: spec.image,
    ...(spec.command.length > 0 ? { Cmd: spec.command } : {}),
    Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
    WorkingDir: target,
    User: dockerUser(options.user ?? parseTaskUser(DEFAULT_TASK_USER)),
    Labels: taskLabels(spec, hostWorkDir, workRoot),
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      // Docker's init (tini) as PID 1: SIGTERM reaches the command even when it installs no
      // handler (a `sleep` as PID 1 would ignore it and wait for the SIGKILL), and zombies are reaped
      Init: true,
      NanoCpus: Math.round(spec.cores * 1e9),
      Memory: memoryBytes,
      // equal to Memory: no swap, so the memory limit is the real limit
      MemorySwap: memoryBytes,
      PidsLimit: spec.pidsLimit,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      ReadonlyRootfs: options.readonlyRootfs === true,
      // the task's scratch space: writable even on a read-only root, charged to its memory limit, gone with it
      Tmpfs: { '/tmp': `rw,nosuid,nodev,mode=1777,size=${spec.memoryMB}m` },
      NetworkMode: spec.network,
      Mounts: [{ Type: 'bind', Source: hostWorkDir, Target: target, ReadOnly: false }],
      LogConfig: dockerLogConfig(options.logBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES),
      // the agent reads the exit code after the container stops, so Docker must keep it
      AutoRemove: false,
      RestartPolicy: { Name: 'no' },
    },
  };
}

/** oneLine: an error text on one line (Docker's messages can span several), at most 500 characters. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim().slice(0, 500);
}

/**
 * startFailureReason: Docker's refusal to start a container, as one line that names the
 * program when the failure is an exec error. Example: `(HTTP code 400) unexpected - failed
 * to create shim task: OCI runtime create failed: ... exec: "/x": stat /x: no such file or
 * directory: unknown` becomes `cannot run "/x": stat /x: no such file or directory`.
 */
export function startFailureReason(message: string): string {
  const exec = /exec: "([^"]*)": (.*?)(?::\s*unknown)?\s*$/.exec(oneLine(message));
  if (exec !== null) return `cannot run "${exec[1]}": ${exec[2]}`;
  return oneLine(message.replace(/^\(HTTP code \d+\)\s*(unexpected\s*-\s*)?/, ''));
}

/**
 * tiniExecFailure: the program a container's init (tini) could not exec, from the first
 * lines of its stderr: `[FATAL tini (7)] exec /x failed: No such file or directory` gives
 * `cannot run "/x": No such file or directory`. Undefined when the output says nothing of it.
 */
export function tiniExecFailure(stderr: string): string | undefined {
  const match = /\[FATAL tini \(\d+\)\] exec (.+?) failed: ([^\n]+)/.exec(stderr);
  return match === null ? undefined : `cannot run "${match[1]}": ${match[2]!.trim()}`;
}

/** demuxText: the text of Docker's multiplexed log frames (8-byte headers) of the given stream (2 = stderr). */
export function demuxText(body: Buffer, stream: 1 | 2): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= body.length) {
    const size = body.readUInt32BE(at + 4);
    const end = Math.min(at + 8 + size, body.length);
    if (body[at] === stream) parts.push(body.subarray(at + 8, end));
    at = end;
  }
  return Buffer.concat(parts).toString('utf8');
}
