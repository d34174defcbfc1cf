/**
 * The master UI in a real browser (headless Chromium through playwright-core,
 * the system's /usr/bin/chromium; never a downloaded browser) against a real
 * cluster: the real master in-process, two real worker agents running real
 * containers (Docker runtime), the UI server over HTTP.
 *
 * What a person would check: the master page lists the workers and the running
 * app; the app page lists its executors; an executor killed behind the page's
 * back shows up as KILLED without a reload (server-sent events); the log link
 * leads to the worker's log page, which shows what the container wrote as text;
 * after logging in with a token, the kill button (with its confirm dialog) kills
 * the app. A screenshot is written to test-artifacts/master-ui.png.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { signToken } from '../../lib/http/auth.ts';
import { startUiServer, type UiServer } from '../../functions/http/ui-server.ts';
import { readApplication } from '../../functions/store/read-state.ts';
import type { AgentHandle } from '../../workers/agent/agent.ts';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { appDescription } from '../helpers/protocol.ts';
import { waitFor } from '../helpers/isolation.ts';
import { REDIS_URL } from '../helpers/env.ts';

const SECRET = 'browser-test-secret-0123456789-abcdefghijklmnopq';
const SCREENSHOT = 'test-artifacts/master-ui.png';

let f: AgentFixture;
let ui: UiServer;
let browser: Browser;
let page: Page;
let agents: AgentHandle[] = [];
let appId: string;

before(async () => {
  f = await agentFixture('ui-browser', { conf: { 'spark.flint.auth.secret': SECRET } });
  ui = await startUiServer({ redisUrl: REDIS_URL, config: f.config, port: 0, queueBoard: false });
  agents = [
    await f.startAgent({ workDir: await f.workDir(), cores: 2, memoryMB: 512 }),
    await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 512 }),
  ];
  const reply = await f.masterClient.ask<{ appId: string }>('RegisterApplication', {
    clientId: 'browser-test-client',
    appDescription: appDescription({
      name: 'browser-app',
      maxCores: 3,
      coresPerExecutor: 1,
      memoryPerExecutorMB: 64,
      user: 'carol',
      // what the container writes must reach the log page as text, never as markup
      command: ['sh', '-c', 'echo "<b>executor</b> up"; exec sleep 3600'],
    }),
  });
  appId = reply.appId;
  await waitFor(
    async () => {
      const app = await readApplication(f.redis, f.keys, appId);
      return app && app.executors.length === 3 && app.executors.every((e) => e.state === 'RUNNING');
    },
    { message: 'three executors RUNNING in containers', timeoutMs: 60_000, intervalMs: 200 },
  );
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await ui?.close().catch(() => undefined);
  await f?.cleanup();
});

test('the master page lists the workers and the running app', async () => {
  await page.goto(ui.url + '/');
  assert.equal(await page.locator('#status').innerText(), 'ALIVE');
  assert.equal(await page.locator('#worker-counts').innerText(), '2 Alive, 0 Dead, 0 Decommissioned, 0 Unknown');
  assert.equal(await page.locator('#cores').innerText(), '3 Total, 3 Used');
  for (const agent of agents) {
    const row = page.locator(`#workers tr[data-worker-id="${agent.workerId}"]`);
    assert.equal(await row.count(), 1, `worker ${agent.workerId} listed`);
    assert.match(await row.innerText(), /ALIVE/);
  }
  const appRow = page.locator(`#running-apps tr[data-app-id="${appId}"]`);
  assert.equal(await appRow.count(), 1);
  const text = await appRow.innerText();
  assert.match(text, /browser-app/);
  assert.match(text, /carol/);
  assert.match(text, /RUNNING/);
  await mkdir('test-artifacts', { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
});

test('the app page lists its executors and follows a state change without a reload', async () => {
  await page.goto(`${ui.url}/app/?appId=${encodeURIComponent(appId)}`);
  assert.equal(await page.locator('#executors tbody tr').count(), 3);
  for (const row of await page.locator('#executors tbody tr').all()) assert.match(await row.innerText(), /RUNNING/);
  await page.waitForFunction(() => document.body.getAttribute('data-live') === 'connected', undefined, { timeout: 10_000 });
  // a marker a reload would erase
  await page.evaluate(() => ((window as unknown as { flintMarker: number }).flintMarker = 42));

  await f.masterClient.ask('KillExecutors', { appId, executorIds: ['0'] });
  await page.locator('#removed-executors tr[data-executor-id="0"]').waitFor({ timeout: 15_000 });
  assert.match(await page.locator('#removed-executors tr[data-executor-id="0"] .executor-state').innerText(), /KILLED/);
  assert.equal(await page.evaluate(() => (window as unknown as { flintMarker?: number }).flintMarker), 42, 'the page was reloaded');
  assert.ok(Number(await page.locator('body').getAttribute('data-live-updates')) >= 1);
});

test('the executor log link shows what the container wrote, as text, to an admin logged in on the master UI', async () => {
  // a context of its own: the session it logs in with must not reach the tests below
  const context = await browser.newContext();
  const own = await context.newPage();
  try {
    await own.goto(`${ui.url}/app/?appId=${encodeURIComponent(appId)}`);
    const link = own.locator('#executors tbody tr').first().locator('a', { hasText: 'stdout' });
    const href = await link.getAttribute('href');
    assert.ok(href && href.startsWith('http://127.0.0.1:'), `log link ${href}`);
    // with the cluster's secret the worker UI shows logs to admin tokens only
    const refused = await own.goto(href);
    assert.equal(refused?.status(), 401);
    await own.goto(ui.url + '/login');
    await own.fill('#token', signToken(SECRET, { scope: 'admin', ttlSeconds: 300, subject: 'browser-admin' }));
    await own.click('#login-form button[type="submit"]');
    await own.waitForURL(ui.url + '/');
    // the session cookie is the host's: the browser sends it to the worker UI's port too
    await waitFor(
      async () => {
        await own.goto(href);
        return (await own.locator('#log-text').innerText({ timeout: 2_000 })).includes('<b>executor</b> up');
      },
      { message: 'the container output on the log page', timeoutMs: 15_000, intervalMs: 300 },
    );
    assert.equal(await own.locator('#log-text b').count(), 0, 'log text became markup');
  } finally {
    await context.close();
  }
});

test('after logging in with a token, the kill button kills the app', async () => {
  await page.goto(ui.url + '/');
  // without a session the kill is refused
  page.once('dialog', (dialog) => void dialog.accept());
  await page.locator(`#running-apps tr[data-app-id="${appId}"] form.kill button`).click();
  await page.waitForLoadState();
  assert.match(await page.locator('h1').innerText(), /Authentication required/);

  await page.goto(ui.url + '/login');
  await page.fill('#token', signToken(SECRET, { scope: 'kill', ttlSeconds: 300, subject: 'browser-test' }));
  await page.click('#login-form button[type="submit"]');
  await page.waitForURL(ui.url + '/');
  assert.match(await page.locator('header').innerText(), /browser-test/);

  let confirmText = '';
  page.once('dialog', (dialog) => {
    confirmText = dialog.message();
    void dialog.accept();
  });
  await page.locator(`#running-apps tr[data-app-id="${appId}"] form.kill button`).click();
  await page.locator(`#completed-apps tr[data-app-id="${appId}"]`).waitFor({ timeout: 15_000 });
  assert.equal(confirmText, `Are you sure you want to kill application ${appId} ?`);
  assert.equal(await page.locator(`#running-apps tr[data-app-id="${appId}"]`).count(), 0);
  assert.match(await page.locator(`#completed-apps tr[data-app-id="${appId}"]`).innerText(), /KILLED/);
  // the containers go away too
  await waitFor(async () => (await f.containers(['status=running'])).length === 0, { message: 'executor containers stopped', timeoutMs: 30_000, intervalMs: 300 });
});
