/**
 * DockerApi: the Docker calls the runtime makes, each with a deadline (every wait in Flint
 * has a bound), and the two answers it needs often: a container by id or name (undefined
 * when Docker has none) and a removal that does not care whether the container is there.
 */
import type Docker from 'dockerode';
import { withDeadline } from '../../lib/deadline.ts';

/** statusCodeOf: the HTTP status of a Docker error, if any. */
export function statusCodeOf(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null && 'statusCode' in error ? Number((error as { statusCode: unknown }).statusCode) : undefined;
}

export class DockerApi {
  constructor(
    readonly docker: Docker,
    readonly timeoutMs: number,
  ) {}

  /** call bounds one Docker call. */
  call<T>(what: string, call: Promise<T>, ms = this.timeoutMs): Promise<T> {
    return withDeadline(call, ms, `docker ${what}`);
  }

  /** inspect returns a container, or undefined when Docker has none by that id or name. */
  async inspect(idOrName: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.call('inspect', this.docker.getContainer(idOrName).inspect());
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** forceRemove removes a container whatever its state; one already gone (or going) is not an error. */
  async forceRemove(containerId: string): Promise<void> {
    try {
      await this.call('remove', this.docker.getContainer(containerId).remove({ force: true, v: true }));
    } catch (error) {
      const code = statusCodeOf(error);
      if (code !== 404 && code !== 409) throw error; // 409: a removal is already in progress
    }
  }

  /** list lists containers (running or not) carrying every label given. */
  list(labels: string[]): Promise<Docker.ContainerInfo[]> {
    return this.call('list', this.docker.listContainers({ all: true, filters: { label: labels } }));
  }
}
