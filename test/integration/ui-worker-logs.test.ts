/**
 * The worker UI over real files: log pages page by byte offset as Spark's do,
 * escape what containers write, and refuse every path that leaves the work dir
 * (`..`, separators in ids) and every link, FIFO or device in place of a log or a task's
 * directory (the directories are the tasks': nothing in them is followed). Rolled copies
 * are read with the active file as one log. Also the worker's /json.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createWorkerUiApp, DEFAULT_LOG_BYTES, startWorkerUi, type WorkerUiSource } from '../../workers/worker-ui.ts';
import { makeTempDir, type TempDir } from '../helpers/isolation.ts';
import { signToken } from '../../lib/http/auth.ts';
import { SESSION_COOKIE } from '../../lib/http/ui/session.ts';

let dir: TempDir;
let outside: TempDir;
let source: WorkerUiSource;
const APP = 'app-20240101000000-0001';
const BIG_SIZE = 300 * 1024;
const SMALL_LOG = 'hello\n<script>alert("x")</script>\n& done\n';

/** byteAt: the content of the big log, a byte that tells its own position (mod 10). */
function bigLog(): string {
  let text = '';
  while (text.length < BIG_SIZE) text += String(text.length % 10);
  return text.slice(0, BIG_SIZE);
}

before(async () => {
  dir = await makeTempDir('ui-worker-logs');
  outside = await makeTempDir('ui-worker-logs-outside');
  await mkdir(join(dir.path, APP, '0'), { recursive: true });
  await mkdir(join(dir.path, APP, '1'), { recursive: true });
  await mkdir(join(dir.path, APP, '2'), { recursive: true });
  await mkdir(join(dir.path, 'driver-20240101000000-0000'), { recursive: true });
  await writeFile(join(dir.path, APP, '0', 'stdout'), SMALL_LOG);
  await writeFile(join(dir.path, APP, '0', 'stderr'), 'warn: <b>bold</b>\n');
  await writeFile(join(dir.path, APP, '1', 'stdout'), bigLog());
  await writeFile(join(outside.path, 'secret'), 'TOP SECRET\n');
  await symlink(join(outside.path, 'secret'), join(dir.path, APP, '2', 'stdout'));
  await writeFile(join(dir.path, 'driver-20240101000000-0000', 'stderr'), 'driver says hi\n');
  source = {
    workerId: 'worker-1',
    masterUrl: 'spark://master:7077',
    masterWebUiUrl: 'http://master:8080',
    workDir: dir.path,
    cores: 8,
    memoryMB: 8192,
    coresUsed: () => 2,
    memoryUsed: async () => 1024,
    resources: () => ({ gpu: ['0', '1'] }),
    resourcesUsed: () => ({ gpu: ['0'] }),
    executors: () => [
      {
        appId: APP,
        execId: 0,
        state: 'RUNNING',
        cores: 2,
        memoryMB: 1024,
        workDir: join(dir.path, APP, '0'),
        resources: { gpu: ['0'] },
        appDesc: { name: '<i>app</i>', image: 'img', command: ['run'], env: {}, memoryPerExecutorMB: 1024, resourcesPerExecutor: [], user: 'bob', appUiUrl: '' },
      },
    ],
    finishedExecutors: () => [{ appId: APP, execId: 1, state: 'EXITED', cores: 1, memoryMB: 512, exitCode: 0, workDir: join(dir.path, APP, '1') }],
    drivers: () => [],
    finishedDrivers: () => [{ driverId: 'driver-20240101000000-0000', state: 'FINISHED', cores: 1, memoryMB: 256, workDir: join(dir.path, 'driver-20240101000000-0000'), mainClass: 'org.Main' }],
  };
});

after(async () => {
  await dir?.cleanup();
  await outside?.cleanup();
});

const logPage = (query: string) => createWorkerUiApp(source).request(`/logPage/?${query}`);

test('a log line containing markup is shown as text', async () => {
  const response = await logPage(`appId=${APP}&executorId=0&logType=stdout`);
  assert.equal(response.status, 200);
  const page = await response.text();
  assert.ok(!page.includes('<script>alert'), 'the log became markup');
  assert.ok(page.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
  assert.ok(page.includes('&amp; done'));
  const size = Buffer.byteLength(SMALL_LOG);
  assert.match(page, new RegExp(`Showing 0 - ${size} of ${size} bytes`));
  const stderr = await (await logPage(`appId=${APP}&executorId=0&logType=stderr`)).text();
  assert.ok(stderr.includes('warn: &lt;b&gt;bold&lt;/b&gt;'));
});

test('paging: the last 100 KiB by default, then by offset with previous/next links', async () => {
  const tail = await (await logPage(`appId=${APP}&executorId=1&logType=stdout`)).text();
  assert.match(tail, new RegExp(`Showing ${BIG_SIZE - DEFAULT_LOG_BYTES} - ${BIG_SIZE} of ${BIG_SIZE} bytes`));
  assert.match(tail, new RegExp(`id="log-prev" href="/logPage/\\?appId=${APP}&amp;executorId=1&amp;logType=stdout&amp;offset=${BIG_SIZE - 2 * DEFAULT_LOG_BYTES}&amp;byteLength=${DEFAULT_LOG_BYTES}"`));
  assert.ok(!tail.includes('id="log-next"'), 'no next page at the end');

  const first = await (await logPage(`appId=${APP}&executorId=1&logType=stdout&offset=0&byteLength=1000`)).text();
  assert.match(first, /Showing 0 - 1000 of 307200 bytes/);
  assert.ok(!first.includes('id="log-prev"'), 'no previous page at the start');
  assert.match(first, /id="log-next" href="\/logPage\/\?appId=[^"]+&amp;offset=1000&amp;byteLength=1000"/);
  const text = /<pre class="log" id="log-text">([^<]*)<\/pre>/.exec(first)![1]!;
  assert.equal(text, bigLog().slice(0, 1000));

  const middle = await (await logPage(`appId=${APP}&executorId=1&logType=stdout&offset=150000&byteLength=10`)).text();
  assert.equal(/<pre class="log" id="log-text">([^<]*)<\/pre>/.exec(middle)![1], bigLog().slice(150000, 150010));
  // an offset past the end is clamped to the end, a negative one to 0
  assert.match(await (await logPage(`appId=${APP}&executorId=1&logType=stdout&offset=999999999`)).text(), /Showing 307200 - 307200 of 307200/);
  assert.match(await (await logPage(`appId=${APP}&executorId=1&logType=stdout&offset=-5&byteLength=3`)).text(), /Showing 0 - 3 of 307200/);
});

test('/log returns plain text with the same paging and Spark\'s header line', async () => {
  const app = createWorkerUiApp(source);
  const response = await app.request(`/log?appId=${APP}&executorId=1&logType=stdout&offset=10&byteLength=5`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
  assert.equal(await response.text(), `==== Bytes 10-15 of ${BIG_SIZE} of ${APP}/1/stdout ====\n${bigLog().slice(10, 15)}`);
  const raw = await (await app.request(`/log?appId=${APP}&executorId=0`)).text();
  assert.ok(raw.endsWith('<script>alert("x")</script>\n& done\n'), 'plain text is returned as is');
  const driver = await app.request('/log?driverId=driver-20240101000000-0000&logType=stderr');
  assert.equal(await driver.text(), '==== Bytes 0-15 of 15 of driver-20240101000000-0000/stderr ====\ndriver says hi\n');
});

test('no request reads outside the work dir', async () => {
  const app = createWorkerUiApp(source);
  const refused = [
    `appId=..&executorId=0`,
    `appId=../${APP}&executorId=0`,
    `appId=${encodeURIComponent('a/b')}&executorId=0`,
    `appId=${APP}&executorId=${encodeURIComponent('0/../../x')}`,
    `appId=${APP}&executorId=0&logType=${encodeURIComponent('../../etc/passwd')}`,
    `appId=${APP}&executorId=0&logType=stdin`,
    `driverId=${encodeURIComponent('../etc')}`,
    `driverId=..`,
    `appId=${APP}`,
    `appId=${APP}&executorId=0&offset=abc`,
    `appId=${APP}&executorId=0&byteLength=0`,
  ];
  for (const query of refused) {
    for (const path of ['/logPage/', '/log']) {
      const response = await app.request(`${path}?${query}`);
      assert.equal(response.status, 400, `${path}?${query} answered ${response.status}`);
    }
  }
  // a symlink inside the work dir that points outside is refused too
  const link = await app.request(`/log?appId=${APP}&executorId=2&logType=stdout`);
  assert.equal(link.status, 400);
  assert.ok(!(await link.text()).includes('TOP SECRET'));
  assert.equal((await app.request(`/logPage/?appId=${APP}&executorId=9&logType=stdout`)).status, 404);
  assert.equal((await app.request(`/logPage/?driverId=driver-nope&logType=stdout`)).status, 404);
});

test('no link is followed, even one that stays inside the work dir; a FIFO is refused without blocking; rolled copies that are links are skipped', async () => {
  const app = createWorkerUiApp(source);
  const base = join(dir.path, 'app-links');
  await mkdir(join(base, '0'), { recursive: true });
  await mkdir(join(base, '1'), { recursive: true });
  await mkdir(join(base, '3'), { recursive: true });
  // a link to another task's log, inside the work dir: a task could read its neighbour's output through it
  await symlink(join(dir.path, APP, '0', 'stdout'), join(base, '0', 'stdout'));
  // the executor's directory itself a link to another's
  await symlink(join(dir.path, APP, '0'), join(base, '2'));
  execFileSync('mkfifo', [join(base, '1', 'stdout')]);
  // rolled copies: a real one and a link among them
  await writeFile(join(base, '3', 'stdout--2026-01-01--00-00-00--0001'), 'rolled one\n');
  await symlink(join(outside.path, 'secret'), join(base, '3', 'stdout--2026-01-01--00-00-00--0002'));
  await writeFile(join(base, '3', 'stdout'), 'active\n');
  for (const executorId of ['0', '1', '2']) {
    for (const path of ['/logPage/', '/log']) {
      const response = await app.request(`${path}?appId=app-links&executorId=${executorId}&logType=stdout`);
      assert.equal(response.status, 400, `${path} executor ${executorId} answered ${response.status}`);
      const text = await response.text();
      assert.ok(!text.includes('hello'), 'nothing of the linked log is shown');
      assert.match(text, /refused/);
    }
  }
  const rolled = await app.request('/log?appId=app-links&executorId=3&logType=stdout');
  assert.equal(rolled.status, 200);
  assert.equal(await rolled.text(), '==== Bytes 0-18 of 18 of app-links/3/stdout ====\nrolled one\nactive\n');
});

test('the worker page and /json (Spark\'s writeWorkerState) over a live server', async () => {
  const server = await startWorkerUi(source);
  try {
    const page = await (await fetch(server.url + '/')).text();
    assert.match(page, /<strong>Cores:<\/strong> 8 \(2 Used\)/);
    assert.ok(page.includes('&lt;i&gt;app&lt;/i&gt;'), 'app names are escaped');
    assert.ok(page.includes(`/logPage/?appId=${APP}&amp;executorId=0&amp;logType=stderr`));
    assert.ok(page.includes('/logPage/?driverId=driver-20240101000000-0000&amp;logType=stdout'));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON read field by field
    const json = (await (await fetch(server.url + '/json')).json()) as Record<string, any>;
    assert.deepEqual(Object.keys(json), ['id', 'masterurl', 'masterwebuiurl', 'cores', 'coresused', 'memory', 'memoryused', 'resources', 'resourcesused', 'executors', 'finishedexecutors']);
    assert.equal(json.id, 'worker-1');
    assert.equal(json.masterurl, 'spark://master:7077');
    assert.equal(json.masterwebuiurl, 'http://master:8080');
    assert.equal(json.coresused, 2);
    assert.equal(json.memoryused, 1024);
    assert.deepEqual(json.resources, { gpu: { name: 'gpu', addresses: ['0', '1'] } });
    assert.deepEqual(json.resourcesused, { gpu: { name: 'gpu', addresses: ['0'] } });
    assert.equal(json.executors.length, 1);
    assert.deepEqual(Object.keys(json.executors[0]), ['id', 'memory', 'resources', 'appid', 'appdesc']);
    assert.equal(json.executors[0].appdesc.name, '<i>app</i>');
    assert.equal(json.executors[0].appdesc.command, 'Command(img,List(run),Map(),List(),List(),List())');
    assert.equal(json.finishedexecutors[0].id, 1);
  } finally {
    await server.close();
  }
});

test("with the cluster's secret, logs and /json need an admin token (header or the master UI's session cookie); the page and metrics stay open", async () => {
  const secret = 'worker-ui-test-secret-0123456789';
  const app = createWorkerUiApp(source, { secret });
  const admin = signToken(secret, { scope: ['admin'], ttlSeconds: 60 });
  const submit = signToken(secret, { scope: ['submit', 'kill'], ttlSeconds: 60 });
  const guarded = [`/log?appId=${APP}&executorId=0&logType=stdout`, `/logPage/?appId=${APP}&executorId=0&logType=stdout`, '/json'];
  for (const path of guarded) {
    assert.equal((await app.request(path)).status, 401, `${path} without a token`);
    assert.equal((await app.request(path, { headers: { authorization: `Bearer ${submit}` } })).status, 403, `${path} with a submit token`);
    assert.equal((await app.request(path, { headers: { authorization: `Bearer ${admin}` } })).status, 200, `${path} with an admin token`);
    assert.equal((await app.request(path, { headers: { cookie: `${SESSION_COOKIE}=${admin}` } })).status, 200, `${path} with the session cookie`);
  }
  const text = await (await app.request(guarded[0]!, { headers: { authorization: `Bearer ${admin}` } })).text();
  assert.ok(text.endsWith(SMALL_LOG), text);
  assert.equal((await app.request('/')).status, 200);
  assert.equal((await app.request('/metrics/prometheus')).status, 200);
});
