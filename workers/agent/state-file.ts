/**
 * AgentStateStore: what an agent remembers across restarts, in
 * `<work-dir>/.flint-agent-state.json` (outside every task's directory, so no task can
 * touch it). Written atomically (temporary file and rename), one write at a time.
 *
 *   instance       a random token made once per work dir: the same agent restarted on its
 *                  work dir registers as the same instance (another agent claiming a live
 *                  worker id is refused "Duplicate worker ID");
 *   reported       task id → final state already delivered to the master (oldest first,
 *                  bounded), so a restarted agent never reports a task twice;
 *   drivers        the LaunchDriver of every driver not yet finished, so a supervised
 *                  driver can be relaunched after a restart, also when the agent died
 *                  between removing its old run and starting the new one;
 *   decommissioned set once the worker decommissioned itself: it stays so.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LaunchDriver } from '../../protocol/messages.ts';
import type { Logger } from '../../lib/log.ts';

/** AGENT_STATE_FILE: the file's name in the work dir. */
export const AGENT_STATE_FILE = '.flint-agent-state.json';

interface AgentStateFile {
  version: 1;
  instance: string;
  reported: Record<string, string>;
  drivers: Record<string, LaunchDriver>;
  decommissioned?: boolean;
}

function newInstance(): string {
  return randomBytes(12).toString('base64url');
}

export class AgentStateStore {
  private write: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly state: AgentStateFile,
  ) {}

  /** load reads the state file (an unreadable one is logged and started afresh), creating the instance token once. */
  static async load(workDir: string, log: Logger): Promise<AgentStateStore> {
    const path = join(workDir, AGENT_STATE_FILE);
    let state: AgentStateFile = { version: 1, instance: newInstance(), reported: {}, drivers: {} };
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<AgentStateFile>;
      state = {
        version: 1,
        instance: typeof parsed.instance === 'string' && /^[A-Za-z0-9_-]{8,64}$/.test(parsed.instance) ? parsed.instance : newInstance(),
        reported: parsed.reported && typeof parsed.reported === 'object' ? parsed.reported : {},
        drivers: parsed.drivers && typeof parsed.drivers === 'object' ? parsed.drivers : {},
        ...(parsed.decommissioned === true ? { decommissioned: true } : {}),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        log.warn({ err: error, file: path }, 'agent state file unreadable; starting without it (finished tasks may be reported twice)');
      }
    }
    const store = new AgentStateStore(path, state);
    await store.update(() => undefined);
    return store;
  }

  get instance(): string {
    return this.state.instance;
  }

  get decommissioned(): boolean {
    return this.state.decommissioned === true;
  }

  /** reportedState: the final state already delivered for a task, if any. */
  reportedState(taskId: string): string | undefined {
    return this.state.reported[taskId];
  }

  /** driverLaunch: the LaunchDriver of a driver not yet finished. */
  driverLaunch(driverId: string): LaunchDriver | undefined {
    return this.state.drivers[driverId];
  }

  /** driverLaunches: every driver not yet finished. */
  driverLaunches(): LaunchDriver[] {
    return Object.values(this.state.drivers);
  }

  markDecommissioned(): Promise<void> {
    return this.update((state) => (state.decommissioned = true));
  }

  rememberDriver(launch: LaunchDriver): Promise<void> {
    return this.update((state) => {
      state.drivers[launch.driverId] = launch;
    });
  }

  /** rememberReported: a task's final state was delivered; at most `limit` are kept, oldest dropped first. */
  rememberReported(taskId: string, finalState: string, limit: number, driverId?: string): Promise<void> {
    return this.update((state) => {
      delete state.reported[taskId];
      state.reported[taskId] = finalState;
      const keys = Object.keys(state.reported);
      for (const old of keys.slice(0, Math.max(0, keys.length - limit))) delete state.reported[old];
      if (driverId !== undefined) delete state.drivers[driverId];
    });
  }

  /** update changes the state in memory at once and writes it (atomically, after earlier writes). */
  update(change: (state: AgentStateFile) => void): Promise<void> {
    change(this.state);
    const writeNow = async () => {
      const tmp = `${this.path}.tmp`;
      await writeFile(tmp, JSON.stringify(this.state), { mode: 0o600 });
      await rename(tmp, this.path);
    };
    this.write = this.write.then(writeNow, writeNow);
    return this.write;
  }

  /** flushed: every write so far has finished. */
  flushed(): Promise<void> {
    return this.write.catch(() => undefined);
  }
}
