/** The pure part of the process runtime's cgroups: limit values, limit files, OOM counts, mount parsing, names. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupSegment, limitFiles, limitsFor, parseCgroupMounts, parseOomKills, workerCgroupPath } from '../../workers/runtime/cgroups.ts';

describe('limitsFor', () => {
  it('turns cores, memoryMB and pidsLimit into CFS quota, bytes and pids.max', () => {
    assert.deepEqual(limitsFor(0.5, 32, 16), { cpuPeriodUs: 100_000, cpuQuotaUs: 50_000, memoryBytes: 33_554_432, pidsMax: 16 });
    assert.deepEqual(limitsFor(4, 1024, 512), { cpuPeriodUs: 100_000, cpuQuotaUs: 400_000, memoryBytes: 1_073_741_824, pidsMax: 512 });
    assert.equal(limitsFor(0.001, 6, 1).cpuQuotaUs, 1_000, 'the kernel minimum quota of 1 ms');
  });
  it('refuses values the kernel cannot take', () => {
    assert.throws(() => limitsFor(0, 32, 16), /cores/);
    assert.throws(() => limitsFor(1, 1.5, 16), /memoryMB/);
    assert.throws(() => limitsFor(1, 32, 0), /pidsLimit/);
  });
});

describe('limitFiles', () => {
  const limits = limitsFor(1.5, 64, 32);
  it('v1: period before quota, memory before memsw (optional)', () => {
    assert.deepEqual(limitFiles('v1', limits), [
      { controller: 'cpu', file: 'cpu.cfs_period_us', value: '100000' },
      { controller: 'cpu', file: 'cpu.cfs_quota_us', value: '150000' },
      { controller: 'memory', file: 'memory.limit_in_bytes', value: '67108864' },
      { controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: '67108864', optional: true },
      { controller: 'pids', file: 'pids.max', value: '32' },
    ]);
  });
  it('v2: cpu.max "quota period", no swap', () => {
    assert.deepEqual(limitFiles('v2', limits), [
      { controller: 'cpu', file: 'cpu.max', value: '150000 100000' },
      { controller: 'memory', file: 'memory.max', value: '67108864' },
      { controller: 'memory', file: 'memory.swap.max', value: '0', optional: true },
      { controller: 'pids', file: 'pids.max', value: '32' },
    ]);
  });
});

describe('parseOomKills', () => {
  it('reads oom_kill from v1 memory.oom_control and v2 memory.events', () => {
    assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n'), 2);
    assert.equal(parseOomKills('low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n'), 1);
    assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 0\n'), 0);
  });
  it('falls back to under_oom on old v1 kernels, and says nothing for other text', () => {
    assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 1\n'), 1);
    assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\n'), 0);
    assert.equal(parseOomKills(''), undefined);
  });
});

describe('parseCgroupMounts', () => {
  it('finds v1 hierarchies with their controllers, v2, and read-only mounts', () => {
    const mountinfo = [
      '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct',
      '31 25 0:27 / /sys/fs/cgroup/memory ro,nosuid shared:11 - cgroup cgroup rw,memory',
      '32 25 0:28 / /sys/fs/cgroup/unified rw,relatime shared:12 - cgroup2 cgroup2 rw,nsdelegate',
      '33 25 0:29 / /sys/fs/cgroup/systemd rw,relatime shared:13 - cgroup cgroup rw,xattr,name=systemd',
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    ].join('\n');
    assert.deepEqual(parseCgroupMounts(mountinfo), [
      { version: 'v1', mountPoint: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'], readOnly: false },
      { version: 'v1', mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'], readOnly: true },
      { version: 'v2', mountPoint: '/sys/fs/cgroup/unified', controllers: [], readOnly: false },
      { version: 'v1', mountPoint: '/sys/fs/cgroup/systemd', controllers: [], readOnly: false },
    ]);
  });
});

describe('cgroupSegment and workerCgroupPath', () => {
  it('keeps safe names, and sanitises and hashes others so they cannot collide or escape', () => {
    assert.equal(cgroupSegment('prod-1'), 'prod-1');
    assert.match(cgroupSegment('a/b'), /^a-b-[0-9a-f]{10}$/);
    assert.notEqual(cgroupSegment('a/b'), cgroupSegment('a-b'));
    assert.match(cgroupSegment('..'), /^x-[0-9a-f]{10}$/);
    assert.equal(workerCgroupPath('prod', 'worker-1'), 'flint/prod/worker-1');
  });
});
