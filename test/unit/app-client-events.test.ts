/**
 * AppClient event handling: stream entry decoding and the listener call Spark's
 * ClientEndpoint makes for each event (full ids, finished vs. not). Pure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareStreamIds,
  decodeAppEventEntry,
  invokeListener,
  isStreamId,
  listenerCallFor,
  type AppClientListener,
  type AppEventRecord,
  type ListenerCall,
} from '../../client/app-client.ts';
import { encodeEntry, type RawStreamEntry } from '../../protocol/streams.ts';
import { EXECUTOR_STATES } from '../../protocol/states.ts';

const appId = 'app-20240101000000-0007';

function entry(id: string, type: string, body: unknown): RawStreamEntry {
  return [id, encodeEntry(type, body)];
}

function decoded(id: string, type: string, body: unknown): AppEventRecord {
  const result = decodeAppEventEntry(entry(id, type, body));
  assert.ok(result.ok, result.ok ? '' : result.invalid.reason);
  return result.event;
}

test('decodeAppEventEntry validates type and body and keeps the stream id', () => {
  const added = decoded('1700000000000-1', 'ExecutorAdded', { id: 3, workerId: 'w-1', hostPort: '10.0.0.1:7078', cores: 2, memoryMB: 512 });
  assert.deepEqual(added, {
    id: '1700000000000-1',
    type: 'ExecutorAdded',
    body: { id: 3, workerId: 'w-1', hostPort: '10.0.0.1:7078', cores: 2, memoryMB: 512 },
  });

  const unknown = decodeAppEventEntry(entry('1-0', 'LaunchExecutor', {}));
  assert.deepEqual(unknown, { ok: false, invalid: { id: '1-0', type: 'LaunchExecutor', reason: "unknown message type 'LaunchExecutor'" } });

  const badBody = decodeAppEventEntry(entry('1-1', 'ExecutorUpdated', { id: -1, state: 'RUNNING' }));
  assert.equal(badBody.ok, false);
  if (!badBody.ok) assert.match(badBody.invalid.reason, /^ExecutorUpdated: id: /);

  const notJson = decodeAppEventEntry(['1-2', ['type', 'WorkerRemoved', 'body', '{oops']]);
  assert.equal(notJson.ok, false);
  if (!notJson.ok) assert.match(notJson.invalid.reason, /body is not valid JSON/);

  const noFields = decodeAppEventEntry(['1-3', []]);
  assert.equal(noFields.ok, false);
});

test('ExecutorAdded → executorAdded with Spark\'s full id appId/execId', () => {
  const call = listenerCallFor(appId, decoded('1-0', 'ExecutorAdded', { id: 12, workerId: 'worker-a', hostPort: 'h:1', cores: 4, memoryMB: 2048 }));
  assert.deepEqual(call, { kind: 'executorAdded', fullId: `${appId}/12`, workerId: 'worker-a', hostPort: 'h:1', cores: 4, memoryMB: 2048 });
});

test('ExecutorUpdated: finished states → executorRemoved; DECOMMISSIONED → executorDecommissioned; others → nothing', () => {
  // Spark's table, spelled out rather than derived from the predicate under test.
  const expected: Record<string, string | undefined> = {
    LAUNCHING: undefined,
    RUNNING: undefined,
    KILLED: 'executorRemoved',
    FAILED: 'executorRemoved',
    LOST: 'executorRemoved',
    EXITED: 'executorRemoved',
    DECOMMISSIONED: 'executorDecommissioned',
  };
  assert.deepEqual(Object.keys(expected).sort(), [...EXECUTOR_STATES].sort());
  for (const state of EXECUTOR_STATES) {
    const call = listenerCallFor(appId, decoded('2-0', 'ExecutorUpdated', { id: 0, state, message: 'Command exited with code 3', exitStatus: 3, workerHost: 'h1' }));
    assert.equal(call?.kind, expected[state], state);
    if (call?.kind === 'executorRemoved') {
      assert.deepEqual(call, { kind: 'executorRemoved', fullId: `${appId}/0`, message: 'Command exited with code 3', exitStatus: 3, workerHost: 'h1', oomKilled: false }, state);
    }
    if (call?.kind === 'executorDecommissioned') {
      assert.deepEqual(call, { kind: 'executorDecommissioned', fullId: `${appId}/0`, message: 'Command exited with code 3', workerHost: 'h1' });
    }
  }
});

test('ExecutorUpdated without message or exit status: Spark\'s message.getOrElse("") and None; oomKilled carried', () => {
  const call = listenerCallFor(appId, decoded('3-0', 'ExecutorUpdated', { id: 5, state: 'LOST' }));
  assert.deepEqual(call, { kind: 'executorRemoved', fullId: `${appId}/5`, message: '', exitStatus: undefined, workerHost: undefined, oomKilled: false });
  const oom = listenerCallFor(appId, decoded('3-1', 'ExecutorUpdated', { id: 6, state: 'FAILED', exitStatus: 137, oomKilled: true }));
  assert.equal(oom?.kind === 'executorRemoved' && oom.oomKilled, true);
});

test('WorkerRemoved → workerRemoved; ApplicationRemoved → dead with Spark\'s reason; RegisteredApplication → nothing', () => {
  assert.deepEqual(listenerCallFor(appId, decoded('4-0', 'WorkerRemoved', { id: 'worker-b', host: 'h2', message: 'Not receiving heartbeat for 60 seconds' })), {
    kind: 'workerRemoved',
    workerId: 'worker-b',
    host: 'h2',
    message: 'Not receiving heartbeat for 60 seconds',
  });
  assert.deepEqual(listenerCallFor(appId, decoded('4-1', 'ApplicationRemoved', { message: 'KILLED' })), {
    kind: 'dead',
    reason: 'Master removed our application: KILLED',
  });
  assert.equal(listenerCallFor(appId, decoded('4-2', 'RegisteredApplication', { appId, masterUrl: 'flint://x' })), undefined);
});

test('invokeListener calls the matching method with Spark\'s argument order, and tolerates missing methods', () => {
  const calls: unknown[][] = [];
  const listener: AppClientListener = {
    executorAdded: (...args) => calls.push(['executorAdded', ...args]),
    executorRemoved: (...args) => calls.push(['executorRemoved', ...args]),
    executorDecommissioned: (...args) => calls.push(['executorDecommissioned', ...args]),
    workerRemoved: (...args) => calls.push(['workerRemoved', ...args]),
  };
  const sequence: Exclude<ListenerCall, { kind: 'dead' }>[] = [
    { kind: 'executorAdded', fullId: 'a/1', workerId: 'w', hostPort: 'h:1', cores: 1, memoryMB: 64 },
    { kind: 'executorRemoved', fullId: 'a/1', message: 'm', exitStatus: 3, workerHost: 'h', oomKilled: false },
    { kind: 'executorDecommissioned', fullId: 'a/2', message: 'worker decommissioned', workerHost: 'h' },
    { kind: 'workerRemoved', workerId: 'w', host: 'h', message: 'gone' },
  ];
  for (const call of sequence) invokeListener(listener, call);
  assert.deepEqual(calls, [
    ['executorAdded', 'a/1', 'w', 'h:1', 1, 64],
    ['executorRemoved', 'a/1', 'm', 3, 'h', false],
    ['executorDecommissioned', 'a/2', { message: 'worker decommissioned', workerHost: 'h' }],
    ['workerRemoved', 'w', 'h', 'gone'],
  ]);
  for (const call of sequence) invokeListener({}, call); // an empty listener is valid
});

test('isStreamId accepts Redis stream ids and rejects anything else', () => {
  for (const ok of ['0', '1700000000000-0', '1700000000000-15', '1700000000000']) assert.equal(isStreamId(ok), true, ok);
  for (const bad of ['', '$', '>', '-', '+', 'abc', '1-', '-1', '1-2-3', '1 2', '1700000000000-0\n']) assert.equal(isStreamId(bad), false, JSON.stringify(bad));
});

test('compareStreamIds orders ids numerically, not as strings', () => {
  assert.equal(compareStreamIds('9-0', '10-0'), -1);
  assert.equal(compareStreamIds('1700000000000-10', '1700000000000-9'), 1);
  assert.equal(compareStreamIds('1700000000000-0', '1700000000000'), 0);
  assert.equal(compareStreamIds('0', '1-0'), -1);
  const ids = ['10-1', '9-5', '10-0', '0', '9-10'];
  assert.deepEqual([...ids].sort(compareStreamIds), ['0', '9-5', '9-10', '10-0', '10-1']);
});
