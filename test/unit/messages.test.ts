/**
 * Unit tests of protocol/messages.ts: `parseMessage` is the only door from bytes to
 * typed messages, so every registry must refuse unknown types, bad JSON,
 * non-objects, and missing or wrongly typed fields with a reason that names the
 * message and the field, and must fill in the documented defaults.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  AppEvents,
  MasterInbound,
  WorkerInbound,
  parseMessage,
  z,
  type ParseResult,
} from '../../protocol/messages.ts';
import { EXECUTOR_STATES, DRIVER_STATES } from '../../protocol/states.ts';

const APP_ID = 'app-20231031224509-0008';
const DRIVER_ID = 'driver-20231031224459-0019';
const WORKER_ID = 'worker-20231031224509-127.0.0.1-7078';
const MASTER_URL = 'spark://127.0.0.1:7077';
const IMAGE = 'flint-test-busybox:latest';

const executorDescription = { appId: APP_ID, execId: 0, cores: 1, memoryMB: 512, state: 'RUNNING' };

/** VALID: the smallest valid body of every message type, registry by registry. */
const VALID = {
  MasterInbound: {
    RegisterWorker: { id: WORKER_ID, host: '127.0.0.1', port: 7078, cores: 4, memoryMB: 4096 },
    ExecutorStateChanged: { appId: APP_ID, execId: 0, state: 'RUNNING', workerId: WORKER_ID, epoch: 1 },
    DriverStateChanged: { driverId: DRIVER_ID, state: 'FINISHED', workerId: WORKER_ID, epoch: 1 },
    WorkerLatestState: { id: WORKER_ID, epoch: 1, executors: [executorDescription], driverIds: [DRIVER_ID] },
    WorkerSchedulerStateResponse: { id: WORKER_ID, epoch: 1, executors: [executorDescription], driverIds: [] },
    WorkerDecommissioning: { id: WORKER_ID },
    RegisterApplication: { appDescription: { name: 'Spark Pi', image: IMAGE }, clientId: 'client-1' },
    UnregisterApplication: { appId: APP_ID },
    RequestExecutors: { appId: APP_ID, requestedTotal: 2 },
    KillExecutors: { appId: APP_ID, executorIds: ['0', '1'] },
    KillApplication: { appId: APP_ID },
    RequestSubmitDriver: { driverDescription: { name: 'driver', image: IMAGE } },
    RequestKillDriver: { driverId: DRIVER_ID },
    RequestKillAllDrivers: {},
    RequestDriverStatus: { driverId: DRIVER_ID },
    RequestClearCompletedDriversAndApps: {},
    DecommissionWorkersOnHosts: { hostnames: ['host-a.example'] },
  },
  WorkerInbound: {
    LaunchExecutor: { masterUrl: MASTER_URL, appId: APP_ID, execId: 3, appDesc: { name: 'Spark Pi', image: IMAGE }, cores: 2, memoryMB: 1024, epoch: 1 },
    KillExecutor: { masterUrl: MASTER_URL, appId: APP_ID, execId: 3, epoch: 1 },
    LaunchDriver: { driverId: DRIVER_ID, driverDesc: { name: 'driver', image: IMAGE }, epoch: 1 },
    KillDriver: { driverId: DRIVER_ID, epoch: 1 },
    ApplicationFinished: { id: APP_ID },
    ReconnectWorker: { masterUrl: MASTER_URL },
    DecommissionWorker: { epoch: 1 },
  },
  AppEvents: {
    RegisteredApplication: { appId: APP_ID, masterUrl: MASTER_URL },
    ExecutorAdded: { id: 0, workerId: WORKER_ID, hostPort: '127.0.0.1:7078', cores: 1, memoryMB: 512 },
    ExecutorUpdated: { id: 0, state: 'EXITED', exitStatus: 0 },
    ExecutorLost: { id: 0, message: 'Executor heartbeat timed out after 120034 ms' },
    WorkerRemoved: { id: WORKER_ID, host: '127.0.0.1', message: 'worker lost' },
    ApplicationRemoved: { message: 'KILLED' },
  },
} as const;

const REGISTRIES: Record<keyof typeof VALID, Record<string, z.ZodType>> = { MasterInbound, WorkerInbound, AppEvents };

function reasonOf(result: ParseResult<unknown>): string {
  assert.equal(result.ok, false, 'expected the message to be refused');
  return (result as { ok: false; reason: string }).reason;
}

/** parseOk parses a message that must be valid and returns its typed body. */
function parseOk<R extends Record<string, z.ZodType>, T extends keyof R & string>(registry: R, type: T, raw: unknown): z.infer<R[T]> {
  const result = parseMessage<R, T>(registry, type, raw);
  if (!result.ok) assert.fail(`expected ${type} to parse, got: ${result.reason}`);
  return result.value.body;
}

for (const [registryName, registry] of Object.entries(REGISTRIES) as Array<[keyof typeof VALID, Record<string, z.ZodType>]>) {
  const valid = VALID[registryName] as Record<string, Record<string, unknown>>;

  describe(`${registryName}`, () => {
    test('the fixture table covers every message type of the registry', () => {
      assert.deepEqual(Object.keys(valid).sort(), Object.keys(registry).sort());
    });

    test('accepts the smallest valid body of each type, as an object and as JSON text', () => {
      for (const [type, body] of Object.entries(valid)) {
        const fromObject = parseMessage(registry, type, body);
        const fromJson = parseMessage(registry, type, JSON.stringify(body));
        assert.ok(fromObject.ok, `${type}: ${fromObject.ok ? '' : fromObject.reason}`);
        assert.deepEqual(fromJson, fromObject, type);
        assert.equal(fromObject.value.type, type);
      }
    });

    test('refuses unknown types, including names inherited from Object.prototype', () => {
      for (const type of ['NoSuchMessage', '', 'toString', 'constructor', '__proto__', 'hasOwnProperty']) {
        assert.equal(reasonOf(parseMessage(registry, type, {})), `unknown message type '${type}'`);
      }
    });

    test('refuses bad JSON and bodies that are not objects', () => {
      const type = Object.keys(registry)[0]!;
      assert.match(reasonOf(parseMessage(registry, type, '{"id": ')), new RegExp(`^${type}: body is not valid JSON \\(`));
      assert.match(reasonOf(parseMessage(registry, type, 'not json')), /body is not valid JSON/);
      for (const raw of ['null', '[]', '42', '"text"', 'true', null, undefined, 42, [], ['a'], true]) {
        assert.equal(reasonOf(parseMessage(registry, type, raw)), `${type}: body must be a JSON object`, JSON.stringify(raw));
      }
    });

    test('refuses a body missing any required field, naming the field', () => {
      for (const [type, body] of Object.entries(valid)) {
        const shape = (registry[type] as z.ZodObject).shape as Record<string, z.ZodType>;
        for (const field of Object.keys(shape)) {
          if (shape[field]!.safeParse(undefined).success) continue; // optional or defaulted
          assert.ok(field in body, `fixture ${type} lacks required field ${field}`);
          const { [field]: _dropped, ...rest } = body;
          const reason = reasonOf(parseMessage(registry, type, rest));
          assert.ok(reason.startsWith(`${type}: ${field}: `), `${type} without ${field}: ${reason}`);
        }
      }
    });

    test('refuses a wrongly typed value in any field, naming the field', () => {
      for (const [type, body] of Object.entries(valid)) {
        const shape = (registry[type] as z.ZodObject).shape as Record<string, z.ZodType>;
        for (const field of Object.keys(shape)) {
          // An object whose member is a boolean fits none of the protocol's field types.
          const reason = reasonOf(parseMessage(registry, type, { ...body, [field]: { wrong: true } }));
          assert.ok(reason.startsWith(`${type}: ${field}`), `${type}.${field}: ${reason}`);
        }
      }
    });
  });
}

describe('field rules', () => {
  test('ids allow only letters, digits and . _ : @ / -', () => {
    const reason = reasonOf(parseMessage(MasterInbound, 'UnregisterApplication', { appId: 'app 1; rm -rf /' }));
    assert.match(reason, /^UnregisterApplication: appId: must contain only letters, digits and \. _ : @ \/ -/);
    assert.ok(parseMessage(MasterInbound, 'UnregisterApplication', { appId: 'app-1/0@host:7077_x.y' }).ok);
    assert.match(reasonOf(parseMessage(MasterInbound, 'UnregisterApplication', { appId: '' })), /appId/);
    assert.match(reasonOf(parseMessage(MasterInbound, 'UnregisterApplication', { appId: 'a'.repeat(257) })), /appId/);
  });

  test('numbers: ports in range, positive cores and memory, integer ids', () => {
    const register = VALID.MasterInbound.RegisterWorker;
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterWorker', { ...register, port: 70000 })), /^RegisterWorker: port: /);
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterWorker', { ...register, port: '7078' })), /^RegisterWorker: port: /);
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterWorker', { ...register, cores: 0 })), /^RegisterWorker: cores: /);
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterWorker', { ...register, memoryMB: 1.5 })), /^RegisterWorker: memoryMB: /);
    const changed = VALID.MasterInbound.ExecutorStateChanged;
    assert.match(reasonOf(parseMessage(MasterInbound, 'ExecutorStateChanged', { ...changed, execId: -1 })), /execId/);
    assert.match(reasonOf(parseMessage(MasterInbound, 'ExecutorStateChanged', { ...changed, epoch: 0 })), /epoch/);
  });

  test('states must be one of the protocol\'s states', () => {
    for (const state of EXECUTOR_STATES) {
      assert.ok(parseMessage(MasterInbound, 'ExecutorStateChanged', { ...VALID.MasterInbound.ExecutorStateChanged, state }).ok, state);
    }
    for (const state of DRIVER_STATES) {
      assert.ok(parseMessage(MasterInbound, 'DriverStateChanged', { ...VALID.MasterInbound.DriverStateChanged, state }).ok, state);
    }
    assert.match(
      reasonOf(parseMessage(MasterInbound, 'ExecutorStateChanged', { ...VALID.MasterInbound.ExecutorStateChanged, state: 'running' })),
      /^ExecutorStateChanged: state: /,
    );
  });

  test('nested problems name the whole path', () => {
    const reason = reasonOf(
      parseMessage(MasterInbound, 'RegisterApplication', {
        clientId: 'c1',
        appDescription: { name: 'pi', image: IMAGE, maxCores: -1, resourcesPerExecutor: [{ name: 'gpu', amount: 0 }] },
      }),
    );
    assert.match(reason, /appDescription\.maxCores: /);
    assert.match(reason, /appDescription\.resourcesPerExecutor\.0\.amount: /);
    const latest = VALID.MasterInbound.WorkerLatestState;
    assert.match(
      reasonOf(parseMessage(MasterInbound, 'WorkerLatestState', { ...latest, executors: [{ ...executorDescription, state: 'GONE' }] })),
      /^WorkerLatestState: executors\.0\.state: /,
    );
  });

  test('fields the protocol does not know are dropped, not passed through', () => {
    const body = parseOk(MasterInbound, 'KillApplication', { appId: APP_ID, extra: 'x', __proto__: { polluted: true } });
    assert.deepEqual(body, { appId: APP_ID });
  });

  test('Heartbeat is not a queue message: the master queue refuses it', () => {
    assert.equal(reasonOf(parseMessage(MasterInbound, 'Heartbeat', { workerId: WORKER_ID, epoch: 1 })), "unknown message type 'Heartbeat'");
  });
});

describe('defaults', () => {
  test('RegisterWorker', () => {
    const body = parseOk(MasterInbound, 'RegisterWorker', VALID.MasterInbound.RegisterWorker);
    assert.equal(body.webUiUrl, '');
    assert.deepEqual(body.resources, {});
    assert.deepEqual(body.labels, {});
    assert.deepEqual(body.executors, []);
    assert.deepEqual(body.driverIds, []);
  });

  test('ApplicationDescription takes Spark\'s defaults (1024 MB per executor, no core cap)', () => {
    const body = parseOk(MasterInbound, 'RegisterApplication', VALID.MasterInbound.RegisterApplication);
    assert.deepEqual(body.appDescription, {
      name: 'Spark Pi',
      image: IMAGE,
      command: [],
      env: {},
      memoryPerExecutorMB: 1024,
      resourcesPerExecutor: [],
      user: '<unknown>',
      appUiUrl: '',
      priority: 0,
      labels: {},
    });
    // deepStrictEqual also proves maxCores, coresPerExecutor and initialExecutorLimit are absent (unset).
  });

  test('application priority is bounded', () => {
    const description = (priority: number) => ({ clientId: 'c1', appDescription: { name: 'pi', image: IMAGE, priority } });
    assert.ok(parseMessage(MasterInbound, 'RegisterApplication', description(1000)).ok);
    assert.ok(parseMessage(MasterInbound, 'RegisterApplication', description(-1000)).ok);
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterApplication', description(1001))), /appDescription\.priority/);
  });

  test('DriverDescription takes Spark\'s defaults (1 core, 1024 MB, not supervised)', () => {
    const body = parseOk(MasterInbound, 'RequestSubmitDriver', VALID.MasterInbound.RequestSubmitDriver);
    assert.deepEqual(body.driverDescription, {
      name: 'driver',
      appResource: '',
      mainClass: '',
      image: IMAGE,
      command: [],
      env: {},
      memoryMB: 1024,
      cores: 1,
      supervise: false,
      resourceReqs: [],
      sparkProperties: {},
    });
  });

  test('LaunchExecutor defaults to the default resource profile and no resources', () => {
    const body = parseOk(WorkerInbound, 'LaunchExecutor', VALID.WorkerInbound.LaunchExecutor);
    assert.equal(body.rpId, 0);
    assert.deepEqual(body.resources, {});
    assert.equal(body.appDesc.memoryPerExecutorMB, 1024);
  });

  test('LaunchDriver defaults to no resources', () => {
    const body = parseOk(WorkerInbound, 'LaunchDriver', VALID.WorkerInbound.LaunchDriver);
    assert.deepEqual(body.resources, {});
    assert.equal(body.driverDesc.cores, 1);
  });

  test('a given value is kept, not replaced by the default', () => {
    const body = parseOk(MasterInbound, 'RegisterApplication', {
      clientId: 'c1',
      appDescription: { name: 'pi', image: IMAGE, memoryPerExecutorMB: 2048, maxCores: 8, coresPerExecutor: 2, command: ['sleep', '1'] },
    });
    assert.equal(body.appDescription.memoryPerExecutorMB, 2048);
    assert.equal(body.appDescription.maxCores, 8);
    assert.equal(body.appDescription.coresPerExecutor, 2);
    assert.deepEqual(body.appDescription.command, ['sleep', '1']);
  });
});

describe('application conf and executor heartbeats', () => {
  test('conf is bounded and its property names are checked', () => {
    const base = { name: 'a', image: IMAGE };
    assert.equal(parseMessage(MasterInbound, 'RegisterApplication', { appDescription: { ...base, conf: { 'spark.executor.heartbeatInterval': '10s' } }, clientId: 'c' }).ok, true);
    const tooMany = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`spark.k${i}`, 'v']));
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterApplication', { appDescription: { ...base, conf: tooMany }, clientId: 'c' })), /appDescription\.conf: at most 256 properties/);
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterApplication', { appDescription: { ...base, conf: { 'bad key': 'v' } }, clientId: 'c' })), /appDescription\.conf\.bad key: /);
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterApplication', { appDescription: { ...base, conf: { k: 'x'.repeat(4097) } }, clientId: 'c' })), /appDescription\.conf\.k: /);
    assert.match(reasonOf(parseMessage(MasterInbound, 'RegisterApplication', { appDescription: base, clientId: 'c', registrar: 'not-a-hash' })), /registrar: must be a SHA-256 in hex/);
  });

  test('LaunchExecutor may carry where and how its executor heartbeats', () => {
    const launch = VALID.WorkerInbound.LaunchExecutor;
    const body = parseOk(WorkerInbound, 'LaunchExecutor', { ...launch, heartbeat: { url: 'http://127.0.0.1:6067', token: 'fe1.00', intervalMs: 10_000, maxFailures: 60 } });
    assert.deepEqual(body.heartbeat, { url: 'http://127.0.0.1:6067', token: 'fe1.00', intervalMs: 10_000, maxFailures: 60 });
    assert.equal(parseOk(WorkerInbound, 'LaunchExecutor', launch).heartbeat, undefined);
    assert.match(reasonOf(parseMessage(WorkerInbound, 'LaunchExecutor', { ...launch, heartbeat: { url: 'u', token: 't', intervalMs: 0, maxFailures: 1 } })), /heartbeat\.intervalMs/);
  });
});
