/**
 * Kernel cgroups for the process runtime: the cores, memory and pids a task was granted,
 * enforced the way Docker (and Nomad's exec driver) does, on cgroup v1 or v2 behind one
 * small interface (TaskCgroups), detected once at start.
 *
 * Layout: one cgroup per task at `<controller mount>/flint/<cluster>/<worker>/<task name>`
 * (v1: under each of the cpu, memory and pids hierarchies; v2: once, in the unified
 * hierarchy). Flint only creates and removes directories under its own `flint/` parent
 * and never touches any other cgroup. The pure part (limitsFor, limitFiles, parseOomKills,
 * parseCgroupMounts, cgroupSegment) does no I/O and is unit-tested directly.
 */
import { access, mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { sanitiseName, shortHash } from './task-identity.ts';

/** CgroupVersion: which kernel interface enforces the limits. */
export type CgroupVersion = 'v1' | 'v2';

/** CgroupLimits: a task's grant in the kernel's units. */
export interface CgroupLimits {
  /** CFS period in microseconds */
  cpuPeriodUs: number;
  /** CPU time per period in microseconds: cores × period */
  cpuQuotaUs: number;
  memoryBytes: number;
  pidsMax: number;
}

/** CPU_PERIOD_US: the CFS period Docker uses (100 ms); the kernel's smallest quota is 1 ms. */
export const CPU_PERIOD_US = 100_000;
const MIN_CPU_QUOTA_US = 1_000;

/**
 * limitsFor turns a grant into kernel values, as Docker does for NanoCpus/Memory/PidsLimit:
 * 0.5 cores → 50 000 µs of every 100 000 µs period; 32 MB → 33 554 432 bytes, with swap
 * equal to memory (none extra).
 */
export function limitsFor(cores: number, memoryMB: number, pidsLimit: number): CgroupLimits {
  if (!Number.isFinite(cores) || cores <= 0) throw new TypeError(`cores must be a positive number, got ${cores}`);
  if (!Number.isInteger(memoryMB) || memoryMB <= 0) throw new TypeError(`memoryMB must be a positive integer, got ${memoryMB}`);
  if (!Number.isInteger(pidsLimit) || pidsLimit <= 0) throw new TypeError(`pidsLimit must be a positive integer, got ${pidsLimit}`);
  return {
    cpuPeriodUs: CPU_PERIOD_US,
    cpuQuotaUs: Math.max(MIN_CPU_QUOTA_US, Math.round(cores * CPU_PERIOD_US)),
    memoryBytes: memoryMB * 1024 * 1024,
    pidsMax: pidsLimit,
  };
}

/** LimitFile: one value to write into one cgroup file; `optional` files may be missing (v1 memsw without swap accounting). */
export interface LimitFile {
  controller: 'cpu' | 'memory' | 'pids';
  file: string;
  value: string;
  optional?: boolean;
}

/**
 * limitFiles lists the writes that apply limits, in an order the kernel accepts:
 * v1 wants memory.limit_in_bytes before memory.memsw.limit_in_bytes (memsw ≥ memory), and
 * the period before the quota.
 */
export function limitFiles(version: CgroupVersion, limits: CgroupLimits): LimitFile[] {
  if (version === 'v1') {
    return [
      { controller: 'cpu', file: 'cpu.cfs_period_us', value: String(limits.cpuPeriodUs) },
      { controller: 'cpu', file: 'cpu.cfs_quota_us', value: String(limits.cpuQuotaUs) },
      { controller: 'memory', file: 'memory.limit_in_bytes', value: String(limits.memoryBytes) },
      { controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: String(limits.memoryBytes), optional: true },
      { controller: 'pids', file: 'pids.max', value: String(limits.pidsMax) },
    ];
  }
  return [
    { controller: 'cpu', file: 'cpu.max', value: `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}` },
    { controller: 'memory', file: 'memory.max', value: String(limits.memoryBytes) },
    { controller: 'memory', file: 'memory.swap.max', value: '0', optional: true },
    { controller: 'pids', file: 'pids.max', value: String(limits.pidsMax) },
  ];
}

/**
 * parseOomKills reads the kernel's OOM-kill count of a cgroup: v2 memory.events and v1
 * memory.oom_control (kernels ≥ 4.13) both have an `oom_kill N` line. Older v1 kernels lack
 * it; then a cgroup still `under_oom` counts as one kill. Undefined when neither says.
 */
export function parseOomKills(text: string): number | undefined {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name !== undefined && value !== undefined && /^\d+$/.test(value)) fields.set(name, Number(value));
  }
  if (fields.has('oom_kill')) return fields.get('oom_kill');
  if (fields.has('under_oom')) return fields.get('under_oom') === 1 ? 1 : 0;
  return undefined;
}

/** CgroupMount: one line of /proc/self/mountinfo that mounts a cgroup hierarchy. */
export interface CgroupMount {
  version: CgroupVersion;
  mountPoint: string;
  /** v1: the controllers bound to this hierarchy (e.g. cpu, cpuacct) */
  controllers: string[];
  readOnly: boolean;
}

/** parseCgroupMounts picks the cgroup mounts out of /proc/self/mountinfo text. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (before === undefined || after === undefined) continue;
    const fields = before.split(' ');
    const [fsType, , superOptions = ''] = after.split(' ');
    const mountPoint = fields[4]?.replace(/\\040/g, ' ');
    if (mountPoint === undefined) continue;
    const readOnly = (fields[5] ?? '').split(',').includes('ro') || superOptions.split(',').includes('ro');
    if (fsType === 'cgroup2') mounts.push({ version: 'v2', mountPoint, controllers: [], readOnly });
    else if (fsType === 'cgroup') {
      const controllers = superOptions.split(',').filter((option) => ['cpu', 'cpuacct', 'memory', 'pids', 'cpuset', 'blkio', 'devices', 'freezer', 'hugetlb', 'net_cls', 'net_prio', 'perf_event', 'rdma', 'misc'].includes(option));
      mounts.push({ version: 'v1', mountPoint, controllers, readOnly });
    }
  }
  return mounts;
}

/**
 * cgroupSegment is one path segment Flint names a cgroup with: the text itself when it is
 * already a safe name, otherwise its sanitised form plus a hash, so two clusters whose
 * names sanitise alike never share a cgroup.
 */
export function cgroupSegment(text: string): string {
  if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(text)) return text;
  return `${sanitiseName(text, 40)}-${shortHash(text)}`;
}

/** FLINT_CGROUP_PARENT: the only directory under a controller mount that Flint creates. */
export const FLINT_CGROUP_PARENT = 'flint';

/** workerCgroupPath: the cgroup (relative to a controller mount) that holds one worker's task cgroups. */
export function workerCgroupPath(cluster: string, workerId: string): string {
  return join(FLINT_CGROUP_PARENT, cgroupSegment(cluster), cgroupSegment(workerId));
}

/** TaskCgroup: where a task's cgroup is, once created. */
export interface TaskCgroup {
  /** the cgroup.procs files the task's pid must be written to (v1: one per controller) */
  procsFiles: string[];
  /** the file whose `oom_kill` count tells an OOM kill (see parseOomKills) */
  oomFile: string;
  /** the task cgroup's directories (v1: one per controller) */
  dirs: string[];
}

/** CgroupSupport: whether limits can be enforced on this host, and why not. */
export type CgroupSupport = { enforced: true; version: CgroupVersion; describe: string } | { enforced: false; why: string };

/** TaskCgroups: the small interface the process runtime uses, the same for v1 and v2. */
export interface TaskCgroups {
  readonly version: CgroupVersion;
  /** create makes (or finds again) the task's cgroup and writes its limits. */
  create(relativePath: string, limits: CgroupLimits): Promise<TaskCgroup>;
  /** locate names a task's cgroup without creating it (an adopted task's cgroup is found by its name). */
  locate(relativePath: string): TaskCgroup;
  /** oomKills reads the kernel's OOM-kill count of a task cgroup; undefined when it is gone. */
  oomKills(relativePath: string): Promise<number | undefined>;
  /** remove deletes the task's cgroup (the kernel refuses while processes live in it) and then its empty Flint parents. */
  remove(relativePath: string): Promise<void>;
  /** children lists the cgroup names directly under a Flint path. */
  children(relativePath: string): Promise<string[]>;
}

const V1_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

function isErrno(error: unknown, ...codes: string[]): boolean {
  return codes.includes((error as NodeJS.ErrnoException)?.code ?? '');
}

/** mkdirRetrying makes a cgroup path; another runtime may rmdir an empty Flint parent meanwhile, so ENOENT is retried. */
async function mkdirRetrying(path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(path, { recursive: true });
      return;
    } catch (error) {
      if (!isErrno(error, 'ENOENT') || attempt >= 5) throw error;
    }
  }
}

/** rmdirUpTo removes a cgroup and then each empty parent up to (and including) the Flint parent; busy ones stay. */
async function rmdirUpTo(mount: string, relativePath: string): Promise<void> {
  let current = relativePath;
  try {
    await rmdir(join(mount, current));
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  while (current.includes('/')) {
    current = current.slice(0, current.lastIndexOf('/'));
    try {
      await rmdir(join(mount, current));
    } catch {
      return; // not empty (another task or worker), busy, or gone already
    }
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function writeLimits(dirOf: (controller: LimitFile['controller']) => string, files: LimitFile[]): Promise<void> {
  for (const limit of files) {
    const path = join(dirOf(limit.controller), limit.file);
    try {
      await writeFile(path, limit.value);
    } catch (error) {
      if (limit.optional === true && isErrno(error, 'ENOENT', 'EACCES', 'EPERM')) continue;
      throw new Error(`cannot write ${limit.value} to ${path}: ${(error as Error).message}`, { cause: error });
    }
  }
}

class CgroupsV1 implements TaskCgroups {
  readonly version = 'v1' as const;
  constructor(private readonly mounts: Record<(typeof V1_CONTROLLERS)[number], string>) {}

  locate(relativePath: string): TaskCgroup {
    const dirs = V1_CONTROLLERS.map((controller) => join(this.mounts[controller], relativePath));
    return { dirs, procsFiles: dirs.map((dir) => join(dir, 'cgroup.procs')), oomFile: join(this.mounts.memory, relativePath, 'memory.oom_control') };
  }

  async create(relativePath: string, limits: CgroupLimits): Promise<TaskCgroup> {
    for (const controller of V1_CONTROLLERS) await mkdirRetrying(join(this.mounts[controller], relativePath));
    await writeLimits((controller) => join(this.mounts[controller], relativePath), limitFiles('v1', limits));
    return this.locate(relativePath);
  }

  async oomKills(relativePath: string): Promise<number | undefined> {
    const text = await readText(this.locate(relativePath).oomFile);
    return text === undefined ? undefined : parseOomKills(text);
  }

  async remove(relativePath: string): Promise<void> {
    for (const controller of V1_CONTROLLERS) await rmdirUpTo(this.mounts[controller], relativePath);
  }

  async children(relativePath: string): Promise<string[]> {
    return listDirs(join(this.mounts.memory, relativePath));
  }
}

class CgroupsV2 implements TaskCgroups {
  readonly version = 'v2' as const;
  constructor(private readonly mount: string) {}

  locate(relativePath: string): TaskCgroup {
    const dir = join(this.mount, relativePath);
    return { dirs: [dir], procsFiles: [join(dir, 'cgroup.procs')], oomFile: join(dir, 'memory.events') };
  }

  async create(relativePath: string, limits: CgroupLimits): Promise<TaskCgroup> {
    // v2 hands a controller to a child only when every ancestor enables it in cgroup.subtree_control
    const segments = relativePath.split('/');
    for (let depth = 0; depth < segments.length; depth++) {
      const parent = join(this.mount, ...segments.slice(0, depth));
      await writeFile(join(parent, 'cgroup.subtree_control'), '+cpu +memory +pids').catch((error: unknown) => {
        throw new Error(`cannot enable cpu, memory and pids in ${parent}: ${(error as Error).message}`, { cause: error });
      });
      await mkdirRetrying(join(parent, segments[depth] as string));
    }
    const dir = join(this.mount, relativePath);
    await writeLimits(() => dir, limitFiles('v2', limits));
    return this.locate(relativePath);
  }

  async oomKills(relativePath: string): Promise<number | undefined> {
    const text = await readText(this.locate(relativePath).oomFile);
    return text === undefined ? undefined : parseOomKills(text);
  }

  async remove(relativePath: string): Promise<void> {
    await rmdirUpTo(this.mount, relativePath);
  }

  async children(relativePath: string): Promise<string[]> {
    return listDirs(join(this.mount, relativePath));
  }
}

async function listDirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** probeWritable makes and removes a scratch cgroup next to Flint's parent: the only honest test of "may we create cgroups here". */
async function probeWritable(mount: string): Promise<string | undefined> {
  const probe = join(mount, `${FLINT_CGROUP_PARENT}-probe-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    await access(mount, fsConstants.W_OK);
    await mkdir(probe);
  } catch (error) {
    return `${mount} is not writable (${(error as Error).message})`;
  }
  await rmdir(probe).catch(() => undefined);
  return undefined;
}

/**
 * detectCgroups looks at the host once: cgroup v1 when the cpu, memory and pids hierarchies
 * are mounted and writable, else cgroup v2 when a unified hierarchy offers cpu, memory and
 * pids and is writable; otherwise says why not.
 */
export async function detectCgroups(mountinfoPath = '/proc/self/mountinfo'): Promise<{ support: CgroupSupport; cgroups?: TaskCgroups }> {
  const mountinfo = await readText(mountinfoPath);
  if (mountinfo === undefined) return { support: { enforced: false, why: `${mountinfoPath} cannot be read (not Linux?)` } };
  const mounts = parseCgroupMounts(mountinfo);
  const problems: string[] = [];

  const v1 = mounts.filter((mount) => mount.version === 'v1');
  const v1Mounts: Partial<Record<(typeof V1_CONTROLLERS)[number], CgroupMount>> = {};
  for (const controller of V1_CONTROLLERS) v1Mounts[controller] = v1.find((mount) => mount.controllers.includes(controller));
  const missing = V1_CONTROLLERS.filter((controller) => v1Mounts[controller] === undefined);
  if (v1.length > 0 && missing.length === 0) {
    const readOnly = V1_CONTROLLERS.filter((controller) => v1Mounts[controller]?.readOnly === true);
    let why = readOnly.length > 0 ? `cgroup v1 ${readOnly.join(', ')} mounted read-only` : undefined;
    for (const controller of V1_CONTROLLERS) why ??= await probeWritable((v1Mounts[controller] as CgroupMount).mountPoint);
    if (why === undefined) {
      const paths = { cpu: v1Mounts.cpu?.mountPoint as string, memory: v1Mounts.memory?.mountPoint as string, pids: v1Mounts.pids?.mountPoint as string };
      return { support: { enforced: true, version: 'v1', describe: `cgroup v1 (cpu ${paths.cpu}, memory ${paths.memory}, pids ${paths.pids})` }, cgroups: new CgroupsV1(paths) };
    }
    problems.push(why);
  } else if (v1.length > 0) {
    problems.push(`cgroup v1 has no ${missing.join(', ')} hierarchy`);
  }

  for (const mount of mounts.filter((candidate) => candidate.version === 'v2')) {
    const controllers = ((await readText(join(mount.mountPoint, 'cgroup.controllers'))) ?? '').trim().split(/\s+/);
    const absent = V1_CONTROLLERS.filter((controller) => !controllers.includes(controller));
    if (absent.length > 0) {
      problems.push(`cgroup v2 at ${mount.mountPoint} offers no ${absent.join(', ')} controller`);
      continue;
    }
    const why = mount.readOnly ? `cgroup v2 at ${mount.mountPoint} is mounted read-only` : await probeWritable(mount.mountPoint);
    if (why === undefined) return { support: { enforced: true, version: 'v2', describe: `cgroup v2 (${mount.mountPoint})` }, cgroups: new CgroupsV2(mount.mountPoint) };
    problems.push(why);
  }
  if (mounts.length === 0) problems.push('no cgroup file system is mounted');
  return { support: { enforced: false, why: problems.join('; ') } };
}
