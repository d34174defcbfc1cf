/**
 * The agent's view: Spark's WorkerStateResponse built from the task table, and the same
 * in the shape the worker UI (workers/worker-ui.ts) reads.
 */
import type { WorkerDriverView, WorkerExecutorView, WorkerUiSource } from '../worker-ui.ts';
import type { ExecutorRunner } from '../executor-runner.ts';
import type { DriverRunner } from '../driver-runner.ts';
import type { TaskTable } from './task-table.ts';
import type { AgentHandle, AgentView, DriverView, ExecutorView, InboxStats } from './types.ts';

/** AgentFacts: what the view needs besides the task table. */
export type AgentFacts = Omit<AgentView, 'coresUsed' | 'memoryUsed' | 'resourcesUsed' | 'executors' | 'finishedExecutors' | 'drivers' | 'finishedDrivers' | 'inbox'>;

function executorView(runner: ExecutorRunner): ExecutorView {
  return {
    appId: runner.info.appId,
    execId: runner.info.execId,
    cores: runner.info.cores,
    memoryMB: runner.info.memoryMB,
    state: runner.state,
    workDir: runner.info.workDir,
    startedAt: runner.startedAt,
    finishedAt: runner.finishedAt,
    exitStatus: runner.finalReport?.exitStatus,
    message: runner.finalReport?.message,
    resources: runner.info.resources,
    appDesc: runner.info.appDesc,
  };
}

function driverView(runner: DriverRunner): DriverView {
  return {
    driverId: runner.driverId,
    cores: runner.launchMessage.driverDesc.cores,
    memoryMB: runner.launchMessage.driverDesc.memoryMB,
    state: runner.state,
    supervise: runner.supervise,
    relaunches: runner.relaunches,
    workDir: runner.spec.workDir,
    startedAt: runner.startedAt,
    finishedAt: runner.finishedAt,
    exitStatus: runner.finalReport?.exitStatus,
    exception: runner.finalReport?.exception,
    mainClass: runner.launchMessage.driverDesc.mainClass,
    resources: runner.launchMessage.resources,
  };
}

/** mergeResources: the union of resource assignments (name → addresses). */
function mergeResources(assignments: Record<string, string[]>[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const assignment of assignments) {
    for (const [name, addresses] of Object.entries(assignment)) out[name] = [...(out[name] ?? []), ...addresses];
  }
  return out;
}

/** buildView: the agent's view from its facts, its task table and its inbox counters. */
export function buildView(facts: AgentFacts, table: TaskTable, inbox: InboxStats): AgentView {
  const executors = table.activeExecutors();
  const drivers = table.activeDrivers();
  return {
    ...facts,
    coresUsed: executors.reduce((n, r) => n + r.info.cores, 0) + drivers.reduce((n, r) => n + r.launchMessage.driverDesc.cores, 0),
    memoryUsed: executors.reduce((n, r) => n + r.info.memoryMB, 0) + drivers.reduce((n, r) => n + r.launchMessage.driverDesc.memoryMB, 0),
    resourcesUsed: mergeResources([...executors.map((r) => r.info.resources ?? {}), ...drivers.map((r) => r.launchMessage.resources)]),
    executors: executors.map(executorView),
    finishedExecutors: table.finishedExecutors.map(executorView),
    drivers: drivers.map(driverView),
    finishedDrivers: table.finishedDrivers.map(driverView),
    inbox,
  };
}

/** workerUiSource: the agent's view in the shape the worker UI (workers/worker-ui.ts) reads. */
export function workerUiSource(agent: AgentHandle): WorkerUiSource {
  const view = () => agent.view();
  const executor = (e: ExecutorView): WorkerExecutorView => ({
    appId: e.appId,
    execId: e.execId,
    state: e.state,
    cores: e.cores,
    memoryMB: e.memoryMB,
    exitCode: e.exitStatus,
    workDir: e.workDir,
    resources: e.resources,
    appDesc: e.appDesc,
  });
  const driver = (d: DriverView): WorkerDriverView => ({
    driverId: d.driverId,
    state: d.state,
    cores: d.cores,
    memoryMB: d.memoryMB,
    workDir: d.workDir,
    mainClass: d.mainClass,
    exitCode: d.exitStatus,
    resources: d.resources,
  });
  return {
    get workerId() {
      return agent.workerId;
    },
    get masterUrl() {
      return view().masterUrl;
    },
    get masterWebUiUrl() {
      return view().masterWebUiUrl;
    },
    get workDir() {
      return view().workDir;
    },
    get cores() {
      return view().cores;
    },
    get memoryMB() {
      return view().memoryMB;
    },
    coresUsed: () => view().coresUsed,
    memoryUsed: () => view().memoryUsed,
    resources: () => view().resources,
    resourcesUsed: () => view().resourcesUsed,
    executors: () => view().executors.map(executor),
    finishedExecutors: () => view().finishedExecutors.map(executor),
    drivers: () => view().drivers.map(driver),
    finishedDrivers: () => view().finishedDrivers.map(driver),
  };
}
