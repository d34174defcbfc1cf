/**
 * Picks the runtime an agent uses (spark.flint.worker.runtime): Docker when its
 * socket answers a ping, local processes otherwise, with a one-line reason for the log.
 */
import { Docker } from '../../lib/docker.ts';
import { DockerRuntime, type DockerRuntimeOptions } from './docker.ts';
import { ProcessRuntime, type ProcessRuntimeOptions } from './process.ts';
import type { Runtime } from './types.ts';

/** RuntimeKind: the values of spark.flint.worker.runtime. */
export type RuntimeKind = 'auto' | 'docker' | 'process';

/** SelectRuntimeOptions: what either runtime needs; the allow-list applies to both. */
export interface SelectRuntimeOptions {
  /** default /var/run/docker.sock */
  socketPath?: string;
  imageAllowList?: string[];
  /** how long the ping may take before auto falls back to processes, default 2000 ms */
  pingTimeoutMs?: number;
  docker: Omit<DockerRuntimeOptions, 'docker' | 'socketPath' | 'imageAllowList'>;
  process: Omit<ProcessRuntimeOptions, 'imageAllowList'>;
}

/** RuntimeSelection: the runtime and why it was chosen. */
export interface RuntimeSelection {
  runtime: Runtime;
  reason: string;
}

/** pingDocker says whether the Docker engine answers on the socket, or why not. */
export async function pingDocker(docker: Docker, timeoutMs: number): Promise<{ ok: true } | { ok: false; why: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true };
  } catch (error) {
    return { ok: false, why: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** selectRuntime builds the runtime for a kind; an explicit 'docker' fails when Docker does not answer. */
export async function selectRuntime(kind: RuntimeKind, options: SelectRuntimeOptions): Promise<RuntimeSelection> {
  const socketPath = options.socketPath ?? '/var/run/docker.sock';
  const makeProcess = (): Runtime => new ProcessRuntime({ ...options.process, imageAllowList: options.imageAllowList });
  if (kind === 'process') return { runtime: makeProcess(), reason: 'runtime process: configured (spark.flint.worker.runtime=process)' };
  if (kind !== 'auto' && kind !== 'docker') throw new TypeError(`unknown runtime kind ${String(kind)}: use auto, docker or process`);

  const docker = new Docker({ socketPath });
  const ping = await pingDocker(docker, options.pingTimeoutMs ?? 2000);
  if (ping.ok) {
    const runtime = new DockerRuntime({ ...options.docker, docker, imageAllowList: options.imageAllowList });
    return { runtime, reason: `runtime docker: ${kind === 'auto' ? 'auto, and ' : ''}the engine at ${socketPath} answered ping` };
  }
  if (kind === 'docker') throw new Error(`runtime docker was configured but the engine at ${socketPath} did not answer ping: ${ping.why}`);
  return { runtime: makeProcess(), reason: `runtime process: auto, and the Docker engine at ${socketPath} did not answer ping (${ping.why})` };
}
