/**
 * ensureDemoImage builds the local image `flint-demo:latest` (the Pi demo's driver and
 * executors) offline from infra/images/demo/ plus the host's static busybox,
 * the same way infra/setup.sh builds flint-test-busybox: never pulled, rebuilt
 * only when a content hash of its inputs (kept in an image label) changes.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdtemp, readFile, readdir, rm, access } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Docker } from '../lib/docker.ts';
import { packagePath } from '../lib/package-layout.ts';

export const DEMO_IMAGE = 'flint-demo:latest';
export const DEMO_IMAGE_DIR = packagePath('infra', 'images', 'demo');
const HASH_LABEL = 'flint.content-hash';
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

/** findBusybox: the host's busybox binary (the image is built from it; the process runtime runs the demo with it). */
export async function findBusybox(): Promise<string> {
  for (const candidate of BUSYBOX_CANDIDATES) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(`no busybox binary found (${BUSYBOX_CANDIDATES.join(', ')}): install Debian's busybox-static (infra/setup.sh does)`);
}

/** demoImageHash: a hash of every input file (names and contents) and of the busybox binary. */
export async function demoImageHash(busybox: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(DEMO_IMAGE_DIR)).sort()) {
    hash.update(name).update('\0').update(await readFile(join(DEMO_IMAGE_DIR, name))).update('\0');
  }
  hash.update(await readFile(busybox));
  return hash.digest('hex').slice(0, 32);
}

/** ensureDemoImage returns 'found' or 'built'; a failed build throws with Docker's output. */
export async function ensureDemoImage(docker: Docker = new Docker({ socketPath: '/var/run/docker.sock' })): Promise<'found' | 'built'> {
  const busybox = await findBusybox();
  const hash = await demoImageHash(busybox);
  try {
    const info = await docker.getImage(DEMO_IMAGE).inspect();
    if (info.Config?.Labels?.[HASH_LABEL] === hash) return 'found';
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
  const context = await mkdtemp(join(tmpdir(), 'flint-demo-image-'));
  try {
    const files = await readdir(DEMO_IMAGE_DIR);
    for (const name of files) await copyFile(join(DEMO_IMAGE_DIR, name), join(context, name));
    await copyFile(busybox, join(context, 'busybox'));
    // the legacy builder works offline; no network during the build
    const stream = await docker.buildImage(
      { context, src: [...files, 'busybox'] },
      { t: DEMO_IMAGE, dockerfile: 'Containerfile', labels: { [HASH_LABEL]: hash }, networkmode: 'none', rm: true, forcerm: true, version: '1' },
    );
    const output = await new Promise<{ error?: string; stream?: string }[]>((resolve, reject) => {
      docker.modem.followProgress(stream, (error: Error | null, result: { error?: string; stream?: string }[]) => (error ? reject(error) : resolve(result)));
    });
    const failure = output.find((line) => line.error);
    if (failure) throw new Error(`docker build of ${DEMO_IMAGE} failed: ${failure.error}\n${output.map((l) => l.stream ?? '').join('')}`);
    return 'built';
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/**
 * stageDemoScripts copies the demo's scripts (for the process runtime) to a fresh directory
 * under the system's temp dir that every user can read and nobody else can write: tasks run
 * as an unprivileged user (spark.flint.executor.user), and the checkout or install may lie
 * in a directory that user cannot enter (/root, a 0700 temp dir). `remove` deletes the copy.
 */
export async function stageDemoScripts(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'flint-demo-scripts-'));
  try {
    for (const name of (await readdir(DEMO_IMAGE_DIR)).filter((file) => file.endsWith('.sh'))) {
      await copyFile(join(DEMO_IMAGE_DIR, name), join(dir, name));
      await chmod(join(dir, name), 0o644);
    }
    await chmod(dir, 0o755);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
