/**
 * Spark's JsonProtocol, field by field: the objects of Spark's JsonProtocolSuite
 * (createWorkerInfo, createAppInfo, createDriverInfo, createExecutorRunner and the
 * MasterStateResponse built from them) expressed as Flint records, checked against
 * the JSON Spark 4 writes for them, including key order (compared as text).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  javaDateString,
  renderMasterJson,
  writeApplicationDescription,
  writeApplicationInfo,
  writeClusterUtilization,
  writeDriverInfo,
  writeExecutorRunner,
  writeMasterState,
  writeWorkerInfo,
  writeWorkerState,
  MASTER_STATE_FIELDS,
  commandString,
} from '../../protocol/spark-json.ts';
import {
  appFromHash,
  driverFromHash,
  executorFromJson,
  resourcesUsed,
  workerFromHash,
  type AppDescriptionView,
  type AppRecord,
  type DriverRecord,
  type MasterState,
  type WorkerRecord,
} from '../../protocol/records.ts';

const CURR_TIME = 1_700_000_000_123;
const SUBMIT_DATE = 123456789; // JsonConstants.submitDate = new Date(123456789)
const GPU_FPGA = { gpu: ['0', '1', '2'], fpga: ['3', '4', '5'] };
const RESOURCES_JSON = '{"gpu":{"name":"gpu","addresses":["0","1","2"]},"fpga":{"name":"fpga","addresses":["3","4","5"]}}';

function createWorkerInfo(overrides: Partial<WorkerRecord> = {}): WorkerRecord {
  return {
    id: 'id',
    host: 'host',
    port: 8080,
    cores: 4,
    memoryMB: 1234,
    coresUsed: 0,
    memoryUsed: 0,
    state: 'ALIVE',
    epoch: 1,
    webUiUrl: 'http://publicAddress:80',
    resources: GPU_FPGA,
    resourcesFree: GPU_FPGA,
    labels: {},
    registeredAt: CURR_TIME,
    lastHeartbeat: CURR_TIME,
    ...overrides,
  };
}

function createAppDesc(): AppDescriptionView {
  return {
    name: 'name',
    image: 'mainClass',
    command: ['arg1', 'arg2'],
    env: {},
    maxCores: 4,
    memoryPerExecutorMB: 1234,
    // Spark's suite asks for 3 gpu and 3 fpga; ApplicationDescription sorts them by name
    resourcesPerExecutor: [
      { name: 'gpu', amount: 3 },
      { name: 'fpga', amount: 3 },
    ],
    user: 'flint-user',
    appUiUrl: 'appUiUrl',
  };
}

function createAppInfo(): AppRecord {
  return {
    id: 'id',
    clientId: 'client',
    name: 'name',
    user: 'flint-user',
    desc: createAppDesc(),
    state: 'WAITING',
    coresGranted: 0,
    requestedCores: 4,
    executorLimit: -1,
    liveExecutors: 0,
    retryCount: 0,
    startTime: 3,
    submitDate: SUBMIT_DATE,
    endTime: CURR_TIME,
    priority: 0,
    executors: [],
  };
}

function createDriverInfo(): DriverRecord {
  return {
    id: 'driver-3',
    desc: { name: 'driver', mainClass: 'mainClass', image: 'img', cores: 3, memoryMB: 100, supervise: false },
    state: 'SUBMITTED',
    cores: 3,
    memoryMB: 100,
    supervise: false,
    startTime: 3,
    resources: GPU_FPGA,
  };
}

const SUBMIT_TEXT = 'Fri Jan 02 10:17:36 GMT 1970';
const REQS = '[{"name":"fpga","amount":3},{"name":"gpu","amount":3}]';

const workerInfoJson =
  '{"id":"id","host":"host","port":8080,"webuiaddress":"http://publicAddress:80",' +
  '"cores":4,"coresused":0,"coresfree":4,"memory":1234,"memoryused":0,"memoryfree":1234,' +
  `"resources":${RESOURCES_JSON},` +
  '"resourcesused":{"gpu":{"name":"gpu","addresses":[]},"fpga":{"name":"fpga","addresses":[]}},' +
  `"resourcesfree":${RESOURCES_JSON},` +
  `"state":"ALIVE","lastheartbeat":${CURR_TIME}}`;

const appInfoJson =
  '{"id":"id","starttime":3,"name":"name","cores":0,"user":"flint-user",' +
  `"memoryperexecutor":1234,"memoryperslave":1234,"resourcesperexecutor":${REQS},"resourcesperslave":${REQS},` +
  `"submitdate":"${SUBMIT_TEXT}","state":"WAITING","duration":${CURR_TIME - 3}}`;

const driverInfoJson =
  '{"id":"driver-3","starttime":"3","state":"SUBMITTED","cores":3,"memory":100,' +
  `"resources":${RESOURCES_JSON},"submitdate":"Thu Jan 01 00:00:00 GMT 1970","worker":"None","mainclass":"mainClass"}`;

const appDescJson =
  `{"name":"name","cores":4,"memoryperexecutor":1234,"resourcesperexecutor":${REQS},` +
  `"memoryperslave":1234,"resourcesperslave":${REQS},"user":"flint-user",` +
  '"command":"Command(mainClass,List(arg1, arg2),Map(),List(),List(),List())"}';

const executorRunnerJson = `{"id":123,"memory":1234,"resources":${RESOURCES_JSON},"appid":"appId","appdesc":${appDescJson}}`;

test('javaDateString renders Java Date.toString in GMT', () => {
  assert.equal(javaDateString(SUBMIT_DATE), SUBMIT_TEXT);
  assert.equal(javaDateString(0), 'Thu Jan 01 00:00:00 GMT 1970');
  assert.equal(javaDateString(Date.UTC(2019, 8, 4, 19, 32, 10)), 'Wed Sep 04 19:32:10 GMT 2019');
  assert.equal(javaDateString(Date.UTC(2024, 1, 29, 5, 6, 7)), 'Thu Feb 29 05:06:07 GMT 2024');
});

test('writeWorkerInfo matches Spark (fields, order, types, used = total - free)', () => {
  assert.equal(JSON.stringify(writeWorkerInfo(createWorkerInfo())), workerInfoJson);
  const busy = writeWorkerInfo(createWorkerInfo({ coresUsed: 3, memoryUsed: 1000, resourcesFree: { gpu: ['2'], fpga: ['3', '4', '5'] }, state: 'DEAD' }));
  assert.equal(busy.coresfree, 1);
  assert.equal(busy.memoryfree, 234);
  assert.deepEqual(busy.resourcesused, { gpu: { name: 'gpu', addresses: ['0', '1'] }, fpga: { name: 'fpga', addresses: [] } });
  assert.deepEqual(busy.resourcesfree, { gpu: { name: 'gpu', addresses: ['2'] }, fpga: { name: 'fpga', addresses: ['3', '4', '5'] } });
  assert.equal(busy.state, 'DEAD');
});

test('writeApplicationInfo matches Spark (cores = granted, submitdate as Date.toString, duration)', () => {
  const app = createAppInfo();
  assert.equal(JSON.stringify(writeApplicationInfo(app, CURR_TIME + 999)), appInfoJson);
  // while active (endTime -1) the duration runs to now
  const active = { ...app, endTime: -1, coresGranted: 2, state: 'RUNNING' };
  const json = writeApplicationInfo(active, 1003);
  assert.equal(json.duration, 1000);
  assert.equal(json.cores, 2);
  assert.equal(json.state, 'RUNNING');
});

test('writeDriverInfo matches Spark (starttime is a string, worker "None" until placed)', () => {
  assert.equal(JSON.stringify(writeDriverInfo(createDriverInfo())), driverInfoJson);
  const placed = writeDriverInfo({ ...createDriverInfo(), workerId: 'worker-1', state: 'RUNNING' });
  assert.equal(placed.worker, 'worker-1');
  assert.equal(typeof placed.starttime, 'string');
});

test('writeApplicationDescription and writeExecutorRunner match Spark', () => {
  assert.equal(JSON.stringify(writeApplicationDescription(createAppDesc())), appDescJson);
  assert.equal(
    JSON.stringify(writeExecutorRunner({ execId: 123, appId: 'appId', memoryMB: 1234, resources: GPU_FPGA, appDesc: createAppDesc() })),
    executorRunnerJson,
  );
  // maxCores unset → 0 (Spark's maxCores.getOrElse(0))
  assert.equal(writeApplicationDescription({ ...createAppDesc(), maxCores: undefined }).cores, 0);
});

test('commandString redacts secret-looking environment values as Spark does', () => {
  const text = commandString({ image: 'img', command: ['a'], env: { PLAIN: 'x', DB_PASSWORD: 'hunter2', AWS_ACCESS_KEY: 'k', API_TOKEN: 't' } });
  assert.equal(text, 'Command(img,List(a),Map(PLAIN -> x, DB_PASSWORD -> *********(redacted), AWS_ACCESS_KEY -> *********(redacted), API_TOKEN -> *********(redacted)),List(),List(),List())');
});

function masterState(): MasterState {
  return {
    url: 'spark://host:8080',
    workers: [createWorkerInfo(), createWorkerInfo()],
    activeApps: [createAppInfo()],
    completedApps: [],
    activeDrivers: [createDriverInfo()],
    completedDrivers: [createDriverInfo()],
    status: 'ALIVE',
    readAt: CURR_TIME,
  };
}

test('writeMasterState matches Spark (keys in order, sums over alive workers)', () => {
  const expected =
    `{"url":"spark://host:8080","workers":[${workerInfoJson},${workerInfoJson}],"aliveworkers":2,` +
    '"cores":8,"coresused":0,"memory":2468,"memoryused":0,' +
    `"resources":[${RESOURCES_JSON},${RESOURCES_JSON}],` +
    '"resourcesused":[{"gpu":{"name":"gpu","addresses":[]},"fpga":{"name":"fpga","addresses":[]}},{"gpu":{"name":"gpu","addresses":[]},"fpga":{"name":"fpga","addresses":[]}}],' +
    `"activeapps":[${appInfoJson}],"completedapps":[],"activedrivers":[${driverInfoJson}],"completeddrivers":[${driverInfoJson}],"status":"ALIVE"}`;
  assert.equal(JSON.stringify(writeMasterState(masterState(), CURR_TIME)), expected);
  assert.deepEqual(Object.keys(writeMasterState(masterState(), CURR_TIME)), [...MASTER_STATE_FIELDS]);
});

test('writeMasterState counts only ALIVE workers in totals but lists every worker', () => {
  const state = masterState();
  state.workers = [
    createWorkerInfo({ id: 'a', cores: 4, coresUsed: 1, memoryMB: 1000, memoryUsed: 100 }),
    createWorkerInfo({ id: 'b', state: 'DEAD', cores: 8, coresUsed: 8, memoryMB: 8000, memoryUsed: 8000 }),
    createWorkerInfo({ id: 'c', state: 'DECOMMISSIONED', cores: 2, memoryMB: 500 }),
    createWorkerInfo({ id: 'd', cores: 2, coresUsed: 2, memoryMB: 500, memoryUsed: 500, resources: {}, resourcesFree: {} }),
  ];
  const json = writeMasterState(state, CURR_TIME);
  assert.equal((json.workers as unknown[]).length, 4);
  assert.equal(json.aliveworkers, 2);
  assert.equal(json.cores, 6);
  assert.equal(json.coresused, 3);
  assert.equal(json.memory, 1500);
  assert.equal(json.memoryused, 600);
  assert.deepEqual(json.resources, [JSON.parse(RESOURCES_JSON), {}]);
});

test('writeMasterState with a field gives that field alone, and "" for an unknown one', () => {
  const state = masterState();
  for (const field of MASTER_STATE_FIELDS) {
    const one = writeMasterState(state, CURR_TIME, field);
    assert.deepEqual(Object.keys(one), [field]);
    assert.deepEqual(one[field], writeMasterState(state, CURR_TIME)[field]);
  }
  assert.deepEqual(writeMasterState(state, CURR_TIME, 'nosuchfield'), { nosuchfield: '' });
});

test('renderMasterJson follows MasterPage.renderJson on the request path', () => {
  const state = masterState();
  assert.deepEqual(renderMasterJson(state, '/json', CURR_TIME), writeMasterState(state, CURR_TIME));
  assert.deepEqual(renderMasterJson(state, '/json/', CURR_TIME), writeMasterState(state, CURR_TIME));
  assert.deepEqual(renderMasterJson(state, '/json/aliveworkers', CURR_TIME), { aliveworkers: 2 });
  // the regex takes the letters only: /json/cores123 → field "cores"
  assert.deepEqual(renderMasterJson(state, '/json/cores123', CURR_TIME), { cores: 8 });
  assert.deepEqual(renderMasterJson(state, '/json/bogus', CURR_TIME), { bogus: '' });
  // no letters after /json/ → the whole state
  assert.deepEqual(renderMasterJson(state, '/json/123', CURR_TIME), writeMasterState(state, CURR_TIME));
  assert.deepEqual(Object.keys(renderMasterJson(state, '/json/clusterutilization', CURR_TIME)), [
    'waitingDrivers',
    'cores',
    'coresused',
    'coresutilization',
    'memory',
    'memoryused',
    'memoryutilization',
  ]);
});

test('writeClusterUtilization: integer percentages, 100 when there is no capacity', () => {
  const state = masterState();
  state.workers = [createWorkerInfo({ cores: 3, coresUsed: 2, memoryMB: 3000, memoryUsed: 1000 })];
  state.activeDrivers = [createDriverInfo(), { ...createDriverInfo(), id: 'd2', state: 'RUNNING' }];
  assert.deepEqual(writeClusterUtilization(state), {
    waitingDrivers: 1,
    cores: 3,
    coresused: 2,
    coresutilization: 66,
    memory: 3000,
    memoryused: 1000,
    memoryutilization: 33,
  });
  state.workers = [];
  const empty = writeClusterUtilization(state);
  assert.equal(empty.coresutilization, 100);
  assert.equal(empty.memoryutilization, 100);
});

test('writeWorkerState matches Spark', () => {
  const runner = { execId: 123, appId: 'appId', memoryMB: 1234, resources: GPU_FPGA, appDesc: createAppDesc() };
  const json = writeWorkerState({
    workerId: 'workerId',
    masterUrl: 'masterUrl',
    masterWebUiUrl: 'masterWebUiUrl',
    cores: 4,
    coresUsed: 4,
    memoryMB: 1234,
    memoryUsed: 1234,
    resources: {},
    resourcesUsed: {},
    executors: [],
    finishedExecutors: [runner, runner],
  });
  assert.equal(
    JSON.stringify(json),
    '{"id":"workerId","masterurl":"masterUrl","masterwebuiurl":"masterWebUiUrl","cores":4,"coresused":4,"memory":1234,"memoryused":1234,' +
      `"resources":{},"resourcesused":{},"executors":[],"finishedexecutors":[${executorRunnerJson},${executorRunnerJson}]}`,
  );
});

test('the read side parses hashes exactly as the commit scripts write them', () => {
  const worker = workerFromHash({
    id: 'w1',
    host: '10.0.0.1',
    port: '7078',
    cores: '8',
    memoryMB: '4096',
    coresUsed: '2',
    memoryUsed: '1024',
    state: 'ALIVE',
    epoch: '5',
    webUiUrl: 'http://10.0.0.1:8081',
    resources: '{"gpu":["0","1"]}',
    resourcesFree: '{"gpu":["1"]}',
    labels: '{}',
    registeredAt: '1000',
    lastHeartbeat: '2000',
  })!;
  assert.equal(worker.port, 7078);
  assert.equal(worker.coresUsed, 2);
  assert.deepEqual(resourcesUsed(worker.resources, worker.resourcesFree), { gpu: ['0'] });
  // cjson writes an empty resource map as {} and an empty list as {} too: both read as "nothing"
  assert.deepEqual(workerFromHash({ id: 'w2', resources: '{}', resourcesFree: '{"gpu":{}}' })!.resourcesFree, { gpu: [] });
  assert.equal(workerFromHash({}), undefined);

  const exec = executorFromJson('{"id":3,"workerId":"w1","epoch":5,"cores":2,"memoryMB":512,"resources":{},"state":"EXITED","host":"h","hostPort":"h:1","startTime":10,"endTime":20,"exitStatus":137,"oomKilled":true,"message":"oom"}')!;
  assert.equal(exec.exitStatus, 137);
  assert.equal(exec.oomKilled, true);
  assert.deepEqual(exec.resources, {});
  assert.equal(executorFromJson('not json'), undefined);

  const app = appFromHash(
    { id: 'app-1', name: 'n', user: 'u', desc: '{"name":"n","image":"i","memoryPerExecutorMB":2048,"resourcesPerExecutor":[{"name":"gpu","amount":1}],"user":"u"}', state: 'RUNNING', coresGranted: '4', startTime: '5', endTime: '-1' },
    { '1': '{"id":1,"state":"RUNNING"}', '0': '{"id":0,"state":"LAUNCHING"}' },
  )!;
  assert.deepEqual(
    app.executors.map((e) => e.id),
    [0, 1],
  );
  assert.equal(app.endTime, -1);
  assert.equal(app.desc.memoryPerExecutorMB, 2048);

  const driver = driverFromHash({ id: 'driver-1', desc: '{"name":"d","mainClass":"org.Main","image":"i","cores":2,"memoryMB":512,"supervise":true}', state: 'RUNNING', supervise: 'true', startTime: '7', resources: '{}', workerId: 'w1' })!;
  assert.equal(driver.desc.mainClass, 'org.Main');
  assert.equal(driver.workerId, 'w1');
  assert.equal(writeDriverInfo(driver).worker, 'w1');
  assert.equal(driverFromHash({ id: 'driver-2', workerId: '' })!.workerId, undefined);
});
