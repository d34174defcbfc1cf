/**
 * The program check before a container starts (workers/runtime/docker-program-check.ts), as
 * pure logic over a stat function: which file Docker will exec, where execvp looks for it,
 * what exec would say of it, and what is remembered. The archive API itself is exercised
 * against the real engine by test/integration/agent-never-wedges.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgramCheck, effectiveProgram, envPath, execProblem, programCandidates, type PathStat } from '../../workers/runtime/docker-program-check.ts';

const FILE = (mode: number): PathStat => ({ mode, linkTarget: '' });
const LINK = (target: string): PathStat => ({ mode: 2 ** 27 | 0o777, linkTarget: target });
const DIR: PathStat = { mode: 2 ** 31 | 0o755, linkTarget: '' };

function fakeFs(entries: Record<string, PathStat>): { stat: (path: string) => Promise<PathStat | undefined>; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    stat: async (path) => {
      calls.push(path);
      return entries[path];
    },
  };
}

test('effectiveProgram: the image entrypoint wins, then the task command, then the image command', () => {
  assert.equal(effectiveProgram(['run'], { Entrypoint: ['/init'], Cmd: ['x'] }), '/init');
  assert.equal(effectiveProgram(['run'], { Entrypoint: null, Cmd: ['x'] }), 'run');
  assert.equal(effectiveProgram([], { Entrypoint: null, Cmd: ['/bin/sh'] }), '/bin/sh');
  assert.equal(effectiveProgram([], { Entrypoint: '/one', Cmd: null }), '/one');
  assert.equal(effectiveProgram([], {}), undefined);
});

test('envPath: the task PATH, else the image PATH, else Docker\'s default', () => {
  assert.equal(envPath({ PATH: '/a:/b' }, ['PATH=/c']), '/a:/b');
  assert.equal(envPath({}, ['X=1', 'PATH=/c']), '/c');
  assert.equal(envPath({}, null), '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
});

test('programCandidates: a name with a slash is resolved against the working dir; a bare name is searched on PATH (empty entries mean the working dir)', () => {
  assert.deepEqual(programCandidates('/x/run', '/a:/b', '/w'), ['/x/run']);
  assert.deepEqual(programCandidates('./run', '/a', '/w'), ['/w/run']);
  assert.deepEqual(programCandidates('run', '/a::rel', '/w'), ['/a/run', '/w/run', '/w/rel/run']);
});

test('execProblem: links are followed (relative ones from their directory), directories and files without x are refused, loops end', async () => {
  const fs = fakeFs({ '/bin/sh': LINK('busybox'), '/bin/busybox': FILE(0o755), '/bin/dangling': LINK('/nope'), '/bin/plain': FILE(0o644), '/bin': DIR, '/loop': LINK('/loop') });
  assert.equal(await execProblem('/bin/sh', fs.stat), undefined);
  assert.equal(await execProblem('/bin/dangling', fs.stat), 'No such file or directory');
  assert.equal(await execProblem('/bin/plain', fs.stat), 'Permission denied');
  assert.equal(await execProblem('/bin', fs.stat), 'Permission denied');
  assert.equal(await execProblem('/loop', fs.stat), 'Too many levels of symbolic links');
});

test('ProgramCheck: as execvp, a file it may not execute is reported only when nothing else is found', async () => {
  const check = new ProgramCheck();
  const fs = fakeFs({ '/a/tool': FILE(0o644), '/b/tool': FILE(0o755) });
  const base = { imageId: 'img1', path: '/a:/b', workingDir: '/w', mountTarget: '/w', stat: fs.stat };
  assert.equal(await check.problem({ ...base, program: 'tool' }), undefined);
  assert.equal(await check.problem({ ...base, program: 'missing' }), 'cannot run "missing": No such file or directory');
  const onlyDenied = fakeFs({ '/a/tool': FILE(0o644) });
  assert.equal(await new ProgramCheck().problem({ ...base, stat: onlyDenied.stat, program: 'tool' }), 'cannot run "tool": Permission denied');
});

test('ProgramCheck: a program found in the image costs nothing the next time; one found through the work dir, or missing, is looked up every time', async () => {
  const check = new ProgramCheck();
  const fs = fakeFs({ '/bin/sleep': FILE(0o755), '/w/run.sh': FILE(0o755) });
  const base = { imageId: 'img1', path: '/usr/bin:/bin', workingDir: '/w', mountTarget: '/w', stat: fs.stat };
  assert.equal(await check.problem({ ...base, program: 'sleep' }), undefined);
  const first = fs.calls.length;
  assert.equal(first, 2, 'searched /usr/bin, then found in /bin');
  assert.equal(await check.problem({ ...base, program: 'sleep' }), undefined);
  assert.equal(fs.calls.length, first, 'remembered: no stat at all');
  // another image is another filesystem
  assert.equal(await check.problem({ ...base, imageId: 'img2', program: 'sleep' }), undefined);
  assert.equal(fs.calls.length, first + 2);
  // the work dir can change: every time
  const before = fs.calls.length;
  assert.equal(await check.problem({ ...base, program: './run.sh' }), undefined);
  assert.equal(await check.problem({ ...base, program: './run.sh' }), undefined);
  assert.equal(fs.calls.length, before + 2);
  // a PATH that goes through the work dir first is not remembered either, even if the image had it
  const viaMount = { ...base, path: '/w:/bin', program: 'sleep' };
  const again = fs.calls.length;
  await check.problem(viaMount);
  await check.problem(viaMount);
  assert.equal(fs.calls.length, again + 4);
  // a missing program is never remembered
  await check.problem({ ...base, program: 'nope' });
  const missing = fs.calls.length;
  await check.problem({ ...base, program: 'nope' });
  assert.equal(fs.calls.length, missing + 2);
});
