/**
 * HANDLERS: the one handler of every message the master consumes.
 */
import type { MasterInboundType } from '../../protocol/messages.ts';
import type { Handler } from './context.ts';
import * as worker from './worker-messages.ts';
import * as app from './app-messages.ts';
import * as driver from './driver-messages.ts';
import * as ui from './ui-messages.ts';

export const HANDLERS: { [T in MasterInboundType]: Handler<T> } = {
  RegisterWorker: worker.registerWorker,
  ExecutorStateChanged: worker.executorStateChanged,
  DriverStateChanged: worker.driverStateChanged,
  WorkerLatestState: worker.workerLatestState,
  WorkerSchedulerStateResponse: worker.workerSchedulerStateResponse,
  WorkerDecommissioning: worker.workerDecommissioning,
  RegisterApplication: app.registerApplication,
  UnregisterApplication: app.unregisterApplication,
  KillApplication: app.killApplication,
  RequestExecutors: app.requestExecutors,
  KillExecutors: app.killExecutors,
  RequestSubmitDriver: driver.requestSubmitDriver,
  RequestKillDriver: driver.requestKillDriver,
  RequestKillAllDrivers: driver.requestKillAllDrivers,
  RequestDriverStatus: driver.requestDriverStatus,
  RequestClearCompletedDriversAndApps: driver.requestClearCompletedDriversAndApps,
  DecommissionWorkersOnHosts: ui.decommissionWorkersOnHosts,
};
