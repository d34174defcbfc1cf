/**
 * DockerExitWatcher: how the Docker runtime learns that a container may have ended. Two
 * sources, because either alone can miss one: Docker's event stream (`die` and `oom`,
 * filtered by the cluster and worker labels, one stream per scope, reconnected when it
 * drops) and a periodic relist by label (Docker keeps only the last 256 events). Neither
 * decides anything: each tells the runtime to probe the task, and the runtime reads the
 * truth from inspect and reports the exit once (exit-tracker.ts).
 */
import type Docker from 'dockerode';
import type { Logger } from '../../lib/log.ts';
import { withDeadline } from '../../lib/deadline.ts';
import { listedPhase } from './docker-config.ts';
import { LABEL } from './task-identity.ts';

/** Scope: the containers of one worker of one cluster. */
export interface Scope {
  cluster: string;
  workerId: string;
}

/** WatchedContainer: what the watcher needs to know of a container whose run is open. */
export interface WatchedContainer {
  taskId: string;
  containerId: string;
  scope: Scope;
}

/** ExitWatcherHooks: the runtime's side. */
export interface ExitWatcherHooks {
  /** containers whose run has not been reported ended */
  open(): WatchedContainer[];
  /** containers of this process whose start is under way (a `created` one of them is not an ended task) */
  isStarting(containerId: string): boolean;
  /** the container may have ended: read the truth and report it */
  probe(taskId: string, containerId: string): Promise<void>;
  /** Docker sent an `oom` event for the container */
  oom(taskId: string, containerId: string): void;
}

interface EventScope {
  scope: Scope;
  stream: NodeJS.ReadableStream | undefined;
  reconnectTimer: NodeJS.Timeout | undefined;
}

export class DockerExitWatcher {
  private readonly scopes = new Map<string, EventScope>();
  private relistTimer: NodeJS.Timeout | undefined;
  private relisting = false;
  private closed = false;

  constructor(
    private readonly docker: Docker,
    private readonly hooks: ExitWatcherHooks,
    private readonly options: { useEvents: boolean; relistIntervalMs: number; apiTimeoutMs: number; logger?: Logger },
  ) {}

  /** watch makes sure the scope's events are followed and the relist runs. */
  watch(scope: Scope): void {
    if (this.closed) return;
    this.relistTimer ??= setInterval(() => void this.relist(), this.options.relistIntervalMs);
    const key = `${scope.cluster}\0${scope.workerId}`;
    if (this.scopes.has(key) || !this.options.useEvents) return;
    const entry: EventScope = { scope, stream: undefined, reconnectTimer: undefined };
    this.scopes.set(key, entry);
    void this.connect(entry);
  }

  private async connect(entry: EventScope): Promise<void> {
    if (this.closed) return;
    const reconnect = (): void => {
      entry.stream = undefined;
      if (this.closed || entry.reconnectTimer !== undefined) return;
      entry.reconnectTimer = setTimeout(() => {
        entry.reconnectTimer = undefined;
        void this.connect(entry);
      }, 1000);
      entry.reconnectTimer.unref();
    };
    try {
      const stream = await withDeadline(
        this.docker.getEvents({
          filters: {
            type: ['container'],
            event: ['die', 'oom'],
            label: [`${LABEL.cluster}=${entry.scope.cluster}`, `${LABEL.worker}=${entry.scope.workerId}`],
          },
        }),
        this.options.apiTimeoutMs,
        'docker events',
      );
      if (this.closed) {
        (stream as unknown as { destroy: () => void }).destroy();
        return;
      }
      entry.stream = stream;
      let buffered = '';
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line.length > 0) this.onEvent(line);
          newline = buffered.indexOf('\n');
        }
      });
      stream.on('error', reconnect);
      stream.on('end', reconnect);
      // events may have been missed while not connected
      void this.relist();
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'docker event stream failed; retrying');
      reconnect();
    }
  }

  private onEvent(line: string): void {
    let event: { Action?: string; status?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; id?: string };
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    const taskId = event.Actor?.Attributes?.[LABEL.task];
    const containerId = event.Actor?.ID ?? event.id;
    if (taskId === undefined || containerId === undefined) return;
    if ((event.Action ?? event.status) === 'oom') this.hooks.oom(taskId, containerId);
    void this.hooks.probe(taskId, containerId);
  }

  /** relist lists each scope's containers by label and probes every open run whose container no longer runs. */
  async relist(): Promise<void> {
    if (this.relisting || this.closed) return;
    this.relisting = true;
    try {
      const open = this.hooks.open();
      if (open.length === 0 && this.relistTimer !== undefined) {
        clearInterval(this.relistTimer);
        this.relistTimer = undefined;
      }
      const scopes = new Map<string, Scope>();
      for (const task of open) scopes.set(`${task.scope.cluster}\0${task.scope.workerId}`, task.scope);
      const running = new Set<string>();
      for (const scope of scopes.values()) {
        const containers = await withDeadline(
          this.docker.listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${scope.cluster}`, `${LABEL.worker}=${scope.workerId}`] } }),
          this.options.apiTimeoutMs,
          'docker list',
        );
        for (const container of containers) {
          const phase = listedPhase(container.State);
          // a created container is an ended task, unless this process is starting it right now
          if (phase === 'running' || (phase === 'never-started' && this.hooks.isStarting(container.Id))) running.add(container.Id);
        }
      }
      await Promise.all(open.filter((task) => !running.has(task.containerId)).map((task) => this.hooks.probe(task.taskId, task.containerId)));
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'relist failed');
    } finally {
      this.relisting = false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.relistTimer !== undefined) clearInterval(this.relistTimer);
    this.relistTimer = undefined;
    for (const entry of this.scopes.values()) {
      if (entry.reconnectTimer !== undefined) clearTimeout(entry.reconnectTimer);
      (entry.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    }
    this.scopes.clear();
  }
}
