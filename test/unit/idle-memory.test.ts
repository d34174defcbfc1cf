/**
 * lib/idle-memory.ts switches V8 flags at run time; what it must leave behind is
 * nothing: no `gc` global in the process's context or in later contexts, and the
 * collection it schedules does not keep the process alive. (What it saves is a
 * benchmark figure, bench/startup.ts, not something a test times.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runModuleScript } from '../helpers/flint-process.ts';
import { optimizerChosenByUser } from '../../lib/idle-memory.ts';

test('holding and releasing start-up memory leaves no gc function anywhere and does not keep the process alive', () => {
  const script = `
    import { runInNewContext } from 'node:vm';
    import { holdStartupMemory, releaseStartupMemory } from './lib/idle-memory.ts';
    holdStartupMemory();
    const garbage = Array.from({ length: 200000 }, (_, i) => ({ i, text: 'x'.repeat(i % 50) }));
    releaseStartupMemory();
    // the collection runs later, on an unref'd timer: keep the process up past it
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ mainContext: typeof globalThis.gc, newContext: runInNewContext('typeof gc'), items: garbage.length }));
    }, 5500);
  `;
  const run = runModuleScript(script);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { mainContext: 'undefined', newContext: 'undefined', items: 200000 });

  // without the long timer the process ends at once: the scheduled collection does not hold it
  const quick = runModuleScript(`
    import { releaseStartupMemory } from './lib/idle-memory.ts';
    const started = Date.now();
    releaseStartupMemory();
    process.on('exit', () => process.stdout.write(String(Date.now() - started)));
  `);
  assert.equal(quick.status, 0, quick.stderr);
  assert.ok(Number(quick.stdout) < 4000, `the process ended ${quick.stdout} ms after scheduling, before the collection's 5 s timer`);
});

test('the optimizing compiler is off while holding and on again once released', () => {
  // %GetOptimizationStatus needs --allow-natives-syntax; bit 6 is "optimized by TurboFan"
  const script = `
    import { holdStartupMemory, releaseStartupMemory } from './lib/idle-memory.ts';
    const status = new Function('f', 'return %GetOptimizationStatus(f)');
    const TURBOFANNED = 1 << 6;
    const makeHot = () => new Function('n', 'let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s');
    const heatUntil = async (f, deadline) => {
      do {
        for (let i = 0; i < 2000; i++) f(1000);
        if (status(f) & TURBOFANNED) return true;
        await new Promise((resolve) => setTimeout(resolve, 10));
      } while (Date.now() < deadline);
      return false;
    };
    holdStartupMemory();
    const whileHeld = await heatUntil(makeHot(), Date.now() + 1500);
    releaseStartupMemory();
    const afterRelease = await heatUntil(makeHot(), Date.now() + 20000);
    process.stdout.write(JSON.stringify({ whileHeld, afterRelease }));
    process.exit(0);
  `;
  const run = runModuleScript(script, ['--allow-natives-syntax']);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { whileHeld: false, afterRelease: true });
});

test('the hold ends by itself after its limit, for a process that waits long to be ready', () => {
  const script = `
    import { holdStartupMemory } from './lib/idle-memory.ts';
    const status = new Function('f', 'return %GetOptimizationStatus(f)');
    const TURBOFANNED = 1 << 6;
    const f = new Function('n', 'let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s');
    holdStartupMemory({ limitMs: 1000 });
    const started = Date.now();
    let optimizedAfterMs = -1;
    while (Date.now() - started < 20000 && optimizedAfterMs < 0) {
      for (let i = 0; i < 2000; i++) f(1000);
      if (status(f) & TURBOFANNED) optimizedAfterMs = Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    process.stdout.write(String(optimizedAfterMs));
    process.exit(0);
  `;
  const run = runModuleScript(script, ['--allow-natives-syntax']);
  assert.equal(run.status, 0, run.stderr);
  const optimizedAfterMs = Number(run.stdout);
  assert.ok(optimizedAfterMs >= 1000, `optimized only once the hold ended, after ${optimizedAfterMs} ms (-1: never)`);
});

test("a choice of node's own about the optimizing compiler is left alone", () => {
  assert.equal(optimizerChosenByUser([], ''), false);
  assert.equal(optimizerChosenByUser(['--max-old-space-size=512'], '--enable-source-maps'), false);
  assert.equal(optimizerChosenByUser(['--no-turbofan'], ''), true);
  assert.equal(optimizerChosenByUser([], '--max-old-space-size=512 --jitless'), true);
  assert.equal(optimizerChosenByUser(['--lite_mode'], ''), true);
  assert.equal(optimizerChosenByUser([], '--no-opt'), true);
});
