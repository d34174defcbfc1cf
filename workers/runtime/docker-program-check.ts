/**
 * ProgramCheck: before a container starts, make sure its program exists and is executable,
 * as Spark's ProcessBuilder.start fails for a missing program before anything runs.
 *
 * Why: with Docker's init (tini) as PID 1, a program that cannot be executed is no longer a
 * failed start but a container that starts and exits 127 at once. Reported that way the
 * executor would go RUNNING (which resets its application's retry count, as in Spark) and
 * then fail, over and over: an application whose command has a typo would never reach
 * spark.deploy.maxExecutorRetries. Checked here, it fails to launch, FAILED with one line,
 * exactly as Spark reports it.
 *
 * How: Docker's archive API stats a path in a created container (HEAD /archive), the
 * program is looked up on the task's PATH as execvp would, and symbolic links are followed.
 * An image's files never change, so a program found in an image (by image id, program and
 * PATH) is remembered and later launches of it cost nothing; a lookup that went through the
 * bind-mounted work dir is checked every time, and a missing program is never remembered.
 */
import { posix } from 'node:path';
import type Docker from 'dockerode';

/** DEFAULT_PATH: Docker's PATH when neither the image nor the task sets one. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** PathStat: what Docker's archive API says of a path (X-Docker-Container-Path-Stat). */
export interface PathStat {
  mode: number;
  linkTarget: string;
}

const MODE_DIR = 2 ** 31;
const MODE_SYMLINK = 2 ** 27;
/** Go's os.FileMode type bits: anything but a regular file */
const MODE_TYPE = MODE_DIR | MODE_SYMLINK | 2 ** 26 | 2 ** 25 | 2 ** 24 | 2 ** 23 | 2 ** 22 | 2 ** 21 | 2 ** 19;

/** effectiveProgram: the file Docker will exec: the image's entrypoint, else the task's command, else the image's command. */
export function effectiveProgram(command: readonly string[], image: { Entrypoint?: string[] | string | null; Cmd?: string[] | string | null }): string | undefined {
  const list = (value: string[] | string | null | undefined): string[] => (value === null || value === undefined ? [] : Array.isArray(value) ? value : [value]);
  return list(image.Entrypoint)[0] ?? command[0] ?? list(image.Cmd)[0];
}

/** envPath: the PATH the task runs with: its own env first, then the image's. */
export function envPath(taskEnv: Readonly<Record<string, string>>, imageEnv: readonly string[] | null | undefined): string {
  if (taskEnv.PATH !== undefined) return taskEnv.PATH;
  const fromImage = (imageEnv ?? []).find((entry) => entry.startsWith('PATH='));
  return fromImage === undefined ? DEFAULT_PATH : fromImage.slice('PATH='.length);
}

/** programCandidates: the absolute paths execvp would try, in order. */
export function programCandidates(program: string, path: string, workingDir: string): string[] {
  if (program.includes('/')) return [posix.resolve(workingDir, program)];
  return path.split(':').map((dir) => posix.join(dir === '' ? workingDir : posix.resolve(workingDir, dir), program));
}

/** isUnder: `path` is `dir` or inside it. */
function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

export type StatPath = (path: string) => Promise<PathStat | undefined>;

/**
 * resolveExecutable follows `path` through symbolic links (at most 8) and says what exec
 * would say: undefined when it can run, else the errno text.
 */
export async function execProblem(path: string, stat: StatPath): Promise<string | undefined> {
  let current = path;
  for (let hop = 0; hop <= 8; hop++) {
    const found = await stat(current);
    if (found === undefined) return 'No such file or directory';
    if ((found.mode & MODE_SYMLINK) !== 0 || found.linkTarget !== '') {
      current = posix.resolve(posix.dirname(current), found.linkTarget);
      continue;
    }
    if ((found.mode & MODE_TYPE) !== 0) return 'Permission denied';
    return (found.mode & 0o111) === 0 ? 'Permission denied' : undefined;
  }
  return 'Too many levels of symbolic links';
}

/** statInContainer asks Docker's archive API about a path of a created container. */
export function statInContainer(container: Docker.Container): StatPath {
  return async (path) => {
    try {
      const response = (await container.infoArchive({ path })) as unknown as { headers: Record<string, string | undefined>; resume?: () => void };
      response.resume?.();
      const header = response.headers['x-docker-container-path-stat'];
      if (header === undefined) return undefined;
      const parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as { mode?: number; linkTarget?: string };
      return { mode: Number(parsed.mode ?? 0), linkTarget: String(parsed.linkTarget ?? '') };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  };
}

/** ProgramCheck: the check with its memory of programs found in images. */
export class ProgramCheck {
  private readonly found = new Map<string, true>();

  constructor(private readonly limit = 2000) {}

  /**
   * problem: undefined when the program can be executed, else one line such as
   * `cannot run "/x": No such file or directory`. `mountTarget` is the bind-mounted work dir
   * (its files can change, so what is found there is not remembered).
   */
  async problem(input: { imageId: string; program: string; path: string; workingDir: string; mountTarget: string; stat: StatPath }): Promise<string | undefined> {
    // a program found in the image is found there again: one lookup per image, program and PATH
    const key = `${input.imageId}\0${input.program}\0${input.path}\0${input.workingDir}`;
    if (this.found.has(key)) return undefined;
    let denied = false;
    let throughMount = false;
    for (const candidate of programCandidates(input.program, input.path, input.workingDir)) {
      const inMount = isUnder(candidate, input.mountTarget);
      throughMount ||= inMount;
      const problem = await execProblem(candidate, input.stat);
      if (problem === undefined) {
        // what the work dir holds can change: a lookup that went through it is never remembered
        if (!throughMount) this.remember(key);
        return undefined;
      }
      // as execvp: a file it may not execute does not stop the search, but is what it reports if nothing else is found
      if (problem === 'Permission denied') denied = true;
      else if (problem !== 'No such file or directory') return `cannot run ${JSON.stringify(input.program)}: ${problem}`;
    }
    return `cannot run ${JSON.stringify(input.program)}: ${denied ? 'Permission denied' : 'No such file or directory'}`;
  }

  private remember(key: string): void {
    if (this.found.size >= this.limit) this.found.delete(this.found.keys().next().value as string);
    this.found.set(key, true);
  }
}
