/**
 * DecommissionWorkersOnHosts, the pure parts: which workers a host list names
 * (functions/core/workers-on-hosts.ts, Spark's match over addressToWorker) and
 * what the message accepts (protocol/messages.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workersOnHosts, type WorkerHost } from '../../functions/core/workers-on-hosts.ts';
import { MAX_DECOMMISSION_HOSTS, MasterInbound, parseMessage } from '../../protocol/messages.ts';

const FLEET: WorkerHost[] = [
  { id: 'w-a2', host: 'host-a.example', state: 'ALIVE' },
  { id: 'w-a1', host: 'Host-A.Example', state: 'DECOMMISSIONED' },
  { id: 'w-a0', host: 'host-a.example', state: 'DEAD' },
  { id: 'w-b', host: 'host-b.example', state: 'ALIVE' },
  { id: 'w-c', host: 'host-c.example', state: 'UNKNOWN' },
  { id: 'w-ip', host: '10.0.0.7', state: 'ALIVE' },
];

const CASES: Array<{ name: string; hostnames: string[]; expected: string[] }> = [
  { name: 'every live worker on the host, sorted by id; a DEAD one is not matched', hostnames: ['host-a.example'], expected: ['w-a1', 'w-a2'] },
  { name: 'case does not matter on either side', hostnames: ['HOST-A.EXAMPLE'], expected: ['w-a1', 'w-a2'] },
  { name: 'several hosts', hostnames: ['host-b.example', 'host-c.example'], expected: ['w-b', 'w-c'] },
  { name: 'a repeated host counts each worker once', hostnames: ['host-b.example', 'HOST-B.example'], expected: ['w-b'] },
  { name: 'an IP address is a host like any other', hostnames: ['10.0.0.7'], expected: ['w-ip'] },
  { name: 'a host with a port names nothing (Spark matches hostnames only)', hostnames: ['host-b.example:7078'], expected: [] },
  { name: 'no partial or suffix match', hostnames: ['host-a', 'example', 'a.example'], expected: [] },
  { name: 'an unknown host names nothing', hostnames: ['nowhere.example'], expected: [] },
  { name: 'an empty list names nothing', hostnames: [], expected: [] },
];

for (const { name, hostnames, expected } of CASES) {
  test(`workersOnHosts: ${name}`, () => {
    assert.deepEqual(workersOnHosts(FLEET, hostnames), expected);
  });
}

test('workersOnHosts: the count is stable whatever the state of the matched workers but DEAD', () => {
  const before = workersOnHosts(FLEET, ['host-a.example']);
  const after = workersOnHosts(FLEET.map((w) => (w.state === 'ALIVE' ? { ...w, state: 'DECOMMISSIONED' } : w)), ['host-a.example']);
  assert.deepEqual(after, before);
});

function reason(body: unknown): string {
  const parsed = parseMessage(MasterInbound, 'DecommissionWorkersOnHosts', body);
  assert.equal(parsed.ok, false, `expected ${JSON.stringify(body)} to be refused`);
  return (parsed as { reason: string }).reason;
}

test('DecommissionWorkersOnHosts accepts a list of hostnames', () => {
  const parsed = parseMessage(MasterInbound, 'DecommissionWorkersOnHosts', { hostnames: ['host-a.example', '10.0.0.7', '[::1]'] });
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.value.body, { hostnames: ['host-a.example', '10.0.0.7', '[::1]'] });
  assert.ok(parseMessage(MasterInbound, 'DecommissionWorkersOnHosts', { hostnames: Array.from({ length: MAX_DECOMMISSION_HOSTS }, (_, i) => `h${i}`) }).ok);
});

test('DecommissionWorkersOnHosts refuses an empty list, empty or spaced names, and lists or names too long', () => {
  assert.match(reason({ hostnames: [] }), /^DecommissionWorkersOnHosts: hostnames: name at least one host/);
  assert.match(reason({ hostnames: [''] }), /^DecommissionWorkersOnHosts: hostnames\.0: a hostname must not be empty/);
  assert.match(reason({ hostnames: ['host a'] }), /^DecommissionWorkersOnHosts: hostnames\.0: a hostname must not contain whitespace/);
  assert.match(reason({ hostnames: ['ok', 'h'.repeat(254)] }), /^DecommissionWorkersOnHosts: hostnames\.1: /);
  assert.match(reason({ hostnames: Array.from({ length: MAX_DECOMMISSION_HOSTS + 1 }, (_, i) => `h${i}`) }), /^DecommissionWorkersOnHosts: hostnames: /);
  assert.match(reason({ hostnames: 'host-a.example' }), /^DecommissionWorkersOnHosts: hostnames: /);
  assert.match(reason({}), /^DecommissionWorkersOnHosts: hostnames: /);
});
