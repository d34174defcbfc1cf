/**
 * The bounds on application and driver descriptions (protocol/limits.ts through the
 * schemas of protocol/messages.ts): each limit refuses one step past it, the message
 * names the field, and a description just inside every limit is accepted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MasterInbound, parseMessage } from '../../protocol/messages.ts';
import {
  groupDigits,
  MAX_ARG_BYTES,
  MAX_COMMAND_ARGS,
  MAX_DESCRIPTION_BYTES,
  MAX_ENV_VALUE_BYTES,
  MAX_ENV_VARS,
  MAX_LABELS,
  MAX_PROPERTIES,
  MAX_RESOURCES,
} from '../../protocol/limits.ts';

const base = { name: 'app', image: 'flint-test-busybox:latest' };

function registerApp(desc: Record<string, unknown>) {
  return parseMessage(MasterInbound, 'RegisterApplication', { clientId: 'c1', appDescription: { ...base, ...desc } });
}

function submitDriver(desc: Record<string, unknown>) {
  return parseMessage(MasterInbound, 'RequestSubmitDriver', { driverDescription: { ...base, ...desc } });
}

function refusal(result: ReturnType<typeof registerApp>): string {
  assert.equal(result.ok, false, 'refused');
  return (result as { reason: string }).reason;
}

const times = (n: number, make: (i: number) => [string, string]) => Object.fromEntries(Array.from({ length: n }, (_, i) => make(i)));

describe('application description limits', () => {
  test('command: argument count and argument size', () => {
    assert.equal(registerApp({ command: Array(MAX_COMMAND_ARGS).fill('a') }).ok, true);
    assert.match(refusal(registerApp({ command: Array(MAX_COMMAND_ARGS + 1).fill('a') })), /^RegisterApplication: appDescription\.command: Too big/);
    assert.match(refusal(registerApp({ command: ['x'.repeat(MAX_ARG_BYTES + 1)] })), /appDescription\.command\.0: must be at most 16,384 bytes/);
    // bytes, not characters: 8,193 two-byte characters are over 16,384 bytes
    assert.match(refusal(registerApp({ command: ['é'.repeat(MAX_ARG_BYTES / 2 + 1)] })), /command\.0: must be at most/);
    assert.match(refusal(registerApp({ command: ['a\0b'] })), /command\.0: must not contain NUL/);
  });

  test('env: names, value size, count, total', () => {
    assert.match(refusal(registerApp({ env: { 'A=B': '1' } })), /appDescription\.env\.A=B: a variable name must not contain '=' or NUL/);
    assert.match(refusal(registerApp({ env: { '': '1' } })), /appDescription\.env\.: a variable name must not be empty/);
    assert.match(refusal(registerApp({ env: { BIG: 'x'.repeat(MAX_ENV_VALUE_BYTES + 1) } })), /appDescription\.env\.BIG: must be at most 16,384 bytes/);
    assert.match(refusal(registerApp({ env: times(MAX_ENV_VARS + 1, (i) => [`V${i}`, '1']) })), /appDescription\.env: at most 500 variables/);
    assert.match(refusal(registerApp({ env: times(100, (i) => [`V${i}`, 'y'.repeat(1000)]) })), /appDescription\.env: the description is [\d,]+ bytes as JSON, more than the limit of 65,536; env takes/);
  });

  test('labels: count, keys, values', () => {
    assert.equal(registerApp({ labels: times(MAX_LABELS, (i) => [`team${i}`, 'data']) }).ok, true);
    assert.match(refusal(registerApp({ labels: times(MAX_LABELS + 1, (i) => [`l${i}`, 'v']) })), /appDescription\.labels: at most 64 labels/);
    assert.match(refusal(registerApp({ labels: { 'a b': 'v' } })), /appDescription\.labels\.a b: a label key is letters/);
    assert.match(refusal(registerApp({ labels: { team: 'v'.repeat(1025) } })), /labels\.team: must be at most 1,024 bytes/);
  });

  test('resources: count, names, amounts', () => {
    const resources = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `gpu${i}`, amount: 1 }));
    assert.equal(registerApp({ resourcesPerExecutor: resources(MAX_RESOURCES) }).ok, true);
    assert.match(refusal(registerApp({ resourcesPerExecutor: resources(MAX_RESOURCES + 1) })), /appDescription\.resourcesPerExecutor: Too big/);
    assert.match(refusal(registerApp({ resourcesPerExecutor: [{ name: 'gpu', amount: 1_000_001 }] })), /resourcesPerExecutor\.0\.amount: Too big/);
    assert.match(refusal(registerApp({ resourcesPerExecutor: [{ name: '../gpu', amount: 1 }] })), /resourcesPerExecutor\.0\.name: a resource name is letters/);
  });

  test('a description just inside the total is accepted', () => {
    // JSON overhead of the rest of the description is well under 1 KiB
    const fill = MAX_DESCRIPTION_BYTES - 1024;
    const env = times(Math.ceil(fill / 16_000), (i) => [`V${i}`, 'z'.repeat(Math.min(16_000, fill - i * 16_000))]);
    assert.equal(registerApp({ env }).ok, true);
  });
});

describe('driver description limits', () => {
  test('the same field limits, plus Spark properties', () => {
    assert.match(refusal(submitDriver({ env: { BIG: 'x'.repeat(1024 * 1024) } })), /^RequestSubmitDriver: driverDescription\.env\.BIG: must be at most 16,384 bytes/);
    assert.match(refusal(submitDriver({ sparkProperties: times(MAX_PROPERTIES + 1, (i) => [`spark.p${i}`, '1']) })), /driverDescription\.sparkProperties: at most 500 properties/);
    assert.match(refusal(submitDriver({ sparkProperties: { 'spark.jars': 'j'.repeat(16 * 1024 + 1) } })), /sparkProperties\.spark\.jars: must be at most 16,384 bytes/);
    assert.match(refusal(submitDriver({ command: Array(40).fill('q'.repeat(2000)) })), /driverDescription\.command: the description is [\d,]+ bytes as JSON/);
  });
});

describe('groupDigits', () => {
  test('writes thousands with commas, as en-US does, without loading ICU', () => {
    for (const value of [0, 7, 999, 1000, 65_536, 1_048_576, 123_456_789, -4_321]) {
      assert.equal(groupDigits(value), value.toLocaleString('en-US'), String(value));
    }
  });
});
