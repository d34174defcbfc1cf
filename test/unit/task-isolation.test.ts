/**
 * The pure parts of issue 11.1, 11.2 and 11.5's logs: ids that may become directory names,
 * the task user, Spark's rolling policy and file names, the rolling configuration, and how
 * a refused task is reported. No I/O.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../protocol/config.ts';
import { PATH_SAFE_ID, pathSafeIdProblem } from '../../protocol/messages.ts';
import { appIdFromNameProblem, idPatternShape } from '../../functions/handlers/app-messages.ts';
import { RollingPolicy, isRolledName, namesToDelete, parseRollingInterval, rollingSuffix, sortedRolledNames } from '../../workers/runtime/log-rolling.ts';
import { checkName, relativeParts } from '../../workers/runtime/safe-fs.ts';
import { parseTaskUser, resolveTaskUser } from '../../workers/runtime/task-user.ts';
import { executorExitReport } from '../../workers/executor-runner.ts';
import { effectiveTaskUser, logRollingFromConfig } from '../../workers/worker-main.ts';

describe('ids that become directory names', () => {
  it('start with a letter or digit and hold no "/" and no ".."', () => {
    for (const good of ['app-20240101000000-0001', 'driver-20240101000000-0000', 'myapp', 'a.b', 'worker-2026-::1-8081', 'x@y:z']) assert.equal(pathSafeIdProblem(good), undefined, good);
    for (const bad of ['../../x', '..', '.', '.flint-agent-state.json', 'a/b', 'a/../b', 'x..y', '-x', '', 'a\0b', 'a b', `a${'b'.repeat(256)}`]) {
      assert.notEqual(pathSafeIdProblem(bad), undefined, JSON.stringify(bad));
      assert.equal(PATH_SAFE_ID.test(bad), false);
    }
  });

  it('refuses a name-derived app id that leaves the work dir or has the shape of a driver id', () => {
    assert.match(appIdFromNameProblem('../../x', 'driver-%s-%04d')!, /no "\/", no "\.\."/);
    assert.match(appIdFromNameProblem('driver-20260101120000-0007', 'driver-%s-%04d')!, /shape of a driver id/);
    assert.equal(appIdFromNameProblem('driver-tools', 'driver-%s-%04d'), undefined);
    assert.equal(appIdFromNameProblem('myapp', 'driver-%s-%04d'), undefined);
    assert.ok(idPatternShape('drv.%s.%d').test('drv.20260101120000.3'));
    assert.equal(idPatternShape('drv.%s.%d').test('drvX20260101120000.3'), false, 'the dot is literal');
  });

  it('id patterns that could make such ids are configuration errors', () => {
    for (const pattern of ['../%s-%d', 'app/%s-%04d', '.app-%s-%d', 'a..b-%s-%d']) {
      assert.throws(() => loadConfig({ env: {}, overrides: { 'spark.deploy.appIdPattern': pattern } }), ConfigError, pattern);
      assert.throws(() => loadConfig({ env: {}, overrides: { 'spark.deploy.driverIdPattern': pattern } }), ConfigError, pattern);
    }
    for (const pattern of ['app-%s-%04d', '%s-%d', 'team.a-%s-%d']) assert.equal(loadConfig({ env: {}, overrides: { 'spark.deploy.appIdPattern': pattern } }).appIdPattern, pattern);
  });

  it('path components below the work root are plain names', () => {
    assert.deepEqual(relativeParts('/w', '/w/app-1/0'), ['app-1', '0']);
    assert.throws(() => relativeParts('/w', '/w/../../x/0'), /is not inside \/w/);
    assert.throws(() => relativeParts('/w', '/w'), /is not inside/);
    assert.throws(() => relativeParts('/w', '/other/0'), /is not inside/);
    assert.throws(() => checkName('..'), /not a plain file name/);
    assert.throws(() => checkName('a/b'), /not a plain file name/);
  });
});

describe('the task user', () => {
  it('is uid:gid, or a uid with the same group; root needs permission', () => {
    assert.deepEqual(parseTaskUser('65534:65534'), { uid: 65534, gid: 65534 });
    assert.deepEqual(parseTaskUser('1000'), { uid: 1000, gid: 1000 });
    assert.throws(() => parseTaskUser('nobody'), /is not uid:gid/);
    assert.throws(() => parseTaskUser('1:2:3'), /is not uid:gid/);
    assert.deepEqual(resolveTaskUser(undefined, false), { uid: 65534, gid: 65534 });
    assert.throws(() => resolveTaskUser('0:0', false), /spark\.flint\.worker\.allowRootTasks=true/);
    assert.throws(() => resolveTaskUser('1000:0', false), /may not run as root/, 'root\'s group is root too');
    assert.deepEqual(resolveTaskUser('0', true), { uid: 0, gid: 0 });
  });

  it('an agent that is not root runs tasks as itself unless a user is set explicitly (it could not give them their directory)', () => {
    const defaults = loadConfig({ env: {} });
    const explicit = loadConfig({ env: {}, overrides: { 'spark.flint.executor.user': '2000:2000' } });
    assert.deepEqual(effectiveTaskUser(defaults, false, 0, 0), { uid: 65534, gid: 65534 }, 'root agent: the default user');
    assert.deepEqual(effectiveTaskUser(defaults, false, 999, 998), { uid: 999, gid: 998 }, 'non-root agent: its own user');
    assert.deepEqual(effectiveTaskUser(explicit, false, 999, 998), { uid: 2000, gid: 2000 });
    assert.throws(() => effectiveTaskUser(loadConfig({ env: {}, overrides: { 'spark.flint.executor.user': '0:0' } }), false, 999, 998), /allowRootTasks/);
  });
});

describe('rolling policy (Spark\'s RollingFileAppender)', () => {
  it('size: fills a file up to maxBytes exactly, never past it, and rolls only a non-empty file', () => {
    const policy = new RollingPolicy({ strategy: 'size', maxBytes: 100, maxRetainedFiles: 3 }, 0);
    assert.equal(policy.shouldRoll(500, 0), false, 'an empty file takes the first write');
    assert.equal(policy.room(), 100);
    policy.wrote(60);
    assert.equal(policy.room(), 40);
    assert.equal(policy.shouldRoll(70, 0), false, 'the writer fills the room first');
    policy.wrote(40);
    assert.equal(policy.room(), 0);
    assert.equal(policy.shouldRoll(1, 0), true);
    policy.rolled(0);
    assert.equal(policy.room(), 100);
  });

  it('time: rolls at the first write after the interval boundary, on multiples of the interval since the epoch', () => {
    const hour = 3_600_000;
    const start = 10 * hour + 1000;
    const policy = new RollingPolicy({ strategy: 'time', intervalMs: hour, maxRetainedFiles: -1 }, start);
    policy.wrote(10);
    assert.equal(policy.room(), Infinity);
    assert.equal(policy.shouldRoll(1, 11 * hour), false, 'at the boundary itself');
    assert.equal(policy.shouldRoll(1, 11 * hour + 1), true, 'just past it');
    policy.rolled(11 * hour + 1);
    policy.wrote(1);
    assert.equal(policy.shouldRoll(1, 12 * hour - 1), false);
    assert.equal(policy.shouldRoll(1, 12 * hour + 5), true);
  });

  it('intervals and suffixes as Spark writes them (in UTC), sorting in time order', () => {
    assert.equal(parseRollingInterval('daily'), 86_400_000);
    assert.equal(parseRollingInterval('hourly'), 3_600_000);
    assert.equal(parseRollingInterval('minutely'), 60_000);
    assert.equal(parseRollingInterval('90'), 90_000);
    assert.throws(() => parseRollingInterval('weekly'), /daily, hourly, minutely/);
    const at = Date.UTC(2026, 0, 2, 3, 4, 5, 67);
    assert.equal(rollingSuffix({ strategy: 'size', maxBytes: 1, maxRetainedFiles: 0 }, at), '--2026-01-02--03-04-05--0067');
    assert.equal(rollingSuffix({ strategy: 'time', intervalMs: 86_400_000, maxRetainedFiles: 0 }, at), '--2026-01-02');
    assert.equal(rollingSuffix({ strategy: 'time', intervalMs: 3_600_000, maxRetainedFiles: 0 }, at), '--2026-01-02--03');
    assert.equal(rollingSuffix({ strategy: 'time', intervalMs: 60_000, maxRetainedFiles: 0 }, at), '--2026-01-02--03-04');
    assert.equal(rollingSuffix({ strategy: 'time', intervalMs: 90_000, maxRetainedFiles: 0 }, at), '--2026-01-02--03-04-05');
  });

  it('rolled names are recognised by their suffix only; retention deletes the oldest beyond maxRetainedFiles', () => {
    const names = ['stdout', 'stderr', 'stdout--2026-01-02--03-04-05--0067', 'stdout--2026-01-02--03-04-05--0067--0000', 'stdout--2026-01-01--00-00-00--0001', 'stdout.txt', 'stdout--evil', 'stderr--2026-01-01'];
    assert.equal(isRolledName('stdout', 'stdout--evil'), false);
    assert.equal(isRolledName('stdout', 'stdout.txt'), false);
    assert.deepEqual(sortedRolledNames('stdout', names), ['stdout--2026-01-01--00-00-00--0001', 'stdout--2026-01-02--03-04-05--0067', 'stdout--2026-01-02--03-04-05--0067--0000']);
    assert.deepEqual(namesToDelete('stdout', names, 1), ['stdout--2026-01-01--00-00-00--0001', 'stdout--2026-01-02--03-04-05--0067']);
    assert.deepEqual(namesToDelete('stdout', names, 5), []);
    assert.deepEqual(namesToDelete('stdout', names, -1), [], '-1 keeps all, as Spark');
    assert.deepEqual(namesToDelete('stderr', names, 0), []);
  });

  it('is read from Spark\'s keys; bad values are configuration errors naming the key', () => {
    const config = (overrides: Record<string, string>) => loadConfig({ env: {}, overrides });
    assert.equal(logRollingFromConfig(config({})), undefined, 'no strategy: no rolling (Spark\'s default)');
    assert.deepEqual(logRollingFromConfig(config({ 'spark.executor.logs.rolling.strategy': 'size' })), { strategy: 'size', maxBytes: 1_048_576, maxRetainedFiles: -1 });
    assert.deepEqual(
      logRollingFromConfig(config({ 'spark.executor.logs.rolling.strategy': 'size', 'spark.executor.logs.rolling.maxSize': '10m', 'spark.executor.logs.rolling.maxRetainedFiles': '3' })),
      { strategy: 'size', maxBytes: 10 * 1024 * 1024, maxRetainedFiles: 3 },
    );
    assert.deepEqual(logRollingFromConfig(config({ 'spark.executor.logs.rolling.strategy': 'size', 'spark.executor.logs.rolling.size.maxBytes': '200000' })), { strategy: 'size', maxBytes: 200_000, maxRetainedFiles: -1 }, 'Spark\'s old name');
    assert.deepEqual(logRollingFromConfig(config({ 'spark.executor.logs.rolling.strategy': 'time' })), { strategy: 'time', intervalMs: 86_400_000, maxRetainedFiles: -1 });
    assert.throws(() => config({ 'spark.executor.logs.rolling.maxSize': '1000' }), /spark\.executor\.logs\.rolling\.maxSize="1000".*at least 81920 bytes/);
    assert.throws(() => config({ 'spark.executor.logs.rolling.time.interval': '30' }), /at least 60/);
    assert.throws(() => config({ 'spark.executor.logs.rolling.strategy': 'lines' }), /is not one of/);
  });
});

describe('a refused task, as reported', () => {
  const exit = { exitCode: 137, oomKilled: false, stopped: false, handle: 'c1', refused: 'stdout was replaced by a symbolic link: refused' };
  it('is FAILED with the reason, unless the master killed it', () => {
    assert.deepEqual(executorExitReport('app-1', 0, exit, false), {
      appId: 'app-1',
      execId: 0,
      state: 'FAILED',
      message: 'the worker ended the executor: stdout was replaced by a symbolic link: refused (nothing was written through it)',
      exitStatus: 137,
    });
    assert.equal(executorExitReport('app-1', 0, exit, true).state, 'KILLED');
    assert.equal(executorExitReport('app-1', 0, { ...exit, stopped: true }, false).state, 'FAILED', 'a refusal is not an ordinary stop');
  });
});
