/**
 * Redis credentials without command lines (lib/redis-credentials.ts) and the ACL rules
 * per role (lib/redis-acl.ts): which URL a process connects with, password files that
 * anyone could read refused, and rules that name exactly the cluster's keys.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPasswordFile, resolveRedisUrl, stripCredentials, withCredentials } from '../../lib/redis-credentials.ts';
import { aclFileLine, aclRules, aclUserName, clusterAclUsers } from '../../lib/redis-acl.ts';
import { redactRedisUrl } from '../../lib/redis.ts';

function withFile(content: string, mode: number, run: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'flint-cred-'));
  try {
    const path = join(dir, 'password');
    writeFileSync(path, content);
    chmodSync(path, mode);
    run(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('credentials', () => {
  test('withCredentials percent-encodes; stripCredentials removes them; redaction hides the password', () => {
    const url = withCredentials('redis://127.0.0.1:6379/2', 'flint-c-worker-a/b', 'p@ss:w/rd');
    assert.equal(url, 'redis://flint-c-worker-a%2Fb:p%40ss%3Aw%2Frd@127.0.0.1:6379/2');
    assert.equal(new URL(url).hostname, '127.0.0.1');
    assert.equal(stripCredentials(url), 'redis://127.0.0.1:6379/2');
    assert.equal(stripCredentials('sentinel://u:p@s1:26379,s2:26379/mymaster'), 'sentinel://s1:26379,s2:26379/mymaster');
    assert.equal(redactRedisUrl(url), 'redis://flint-c-worker-a%2Fb:***@127.0.0.1:6379/2');
  });

  test('a password file is read once, trailing newline removed; one anyone may read is refused', () => {
    withFile('s3cret\n', 0o600, (path) => assert.equal(readPasswordFile(path), 's3cret'));
    withFile('s3cret\n', 0o640, (path) => assert.equal(readPasswordFile(path), 's3cret'));
    withFile('s3cret\n', 0o644, (path) => assert.throws(() => readPasswordFile(path), /readable by every user \(mode 644\): chmod 600 it/));
    withFile('\n', 0o600, (path) => assert.throws(() => readPasswordFile(path), /is empty/));
    withFile('a\nb\n', 0o600, (path) => assert.throws(() => readPasswordFile(path), /more than one line/));
    assert.throws(() => readPasswordFile('/nonexistent/flint-password'), /Redis password file \/nonexistent\/flint-password: ENOENT/);
  });

  test('resolveRedisUrl: the URL\'s own password wins, then the file (as the user), then setup\'s file for the setup Redis only', () => {
    withFile('from-file\n', 0o600, (file) => {
      assert.equal(resolveRedisUrl('redis://:inline@127.0.0.1:6379', { passwordFile: file }, '/nonexistent'), 'redis://:inline@127.0.0.1:6379');
      assert.equal(resolveRedisUrl('redis://:inline@127.0.0.1:6379', { user: 'flint-c-client' }, '/nonexistent'), 'redis://flint-c-client:inline@127.0.0.1:6379');
      assert.equal(resolveRedisUrl('redis://u:inline@127.0.0.1:6379', { user: 'other' }, '/nonexistent'), 'redis://u:inline@127.0.0.1:6379');
      assert.equal(resolveRedisUrl('redis://127.0.0.1:7000', { user: 'flint-c-master', passwordFile: file }, '/nonexistent'), 'redis://flint-c-master:from-file@127.0.0.1:7000');
      assert.equal(resolveRedisUrl('redis://127.0.0.1:7000', { passwordFile: file }, '/nonexistent'), 'redis://:from-file@127.0.0.1:7000');
      // setup's file: only for redis://127.0.0.1:6379 given without any credential
      assert.equal(resolveRedisUrl('redis://127.0.0.1:6379', {}, file), 'redis://:from-file@127.0.0.1:6379');
      assert.equal(resolveRedisUrl('redis://localhost', {}, file), 'redis://:from-file@localhost');
      assert.equal(resolveRedisUrl('redis://127.0.0.1:7000', {}, file), 'redis://127.0.0.1:7000');
      assert.equal(resolveRedisUrl('redis://127.0.0.1:6379', {}, '/nonexistent'), 'redis://127.0.0.1:6379');
    });
    assert.throws(() => resolveRedisUrl('redis://127.0.0.1:6379', { user: 'u' }, '/nonexistent'), /spark\.flint\.redis\.user is 'u' but no password is given/);
  });
});

describe('ACL rules', () => {
  test('a worker user names its own inbox, hash and the heartbeats zset, and the master queue; nothing of another worker or any app', () => {
    const rules = aclRules('prod', 'worker', 'w1').join(' ');
    assert.match(rules, /\(~flint\{prod\}:worker:w1:inbox \+xreadgroup /);
    assert.match(rules, /\(%R~flint\{prod\}:worker:w1 \+hmget \+hget \+hgetall \+exists\)/);
    assert.match(rules, /\(~flint\{prod\}:workers:heartbeats \+zadd\)/);
    assert.match(rules, /\(~flint\{prod\}:master:\* /);
    assert.doesNotMatch(rules, /:app|worker:\*|~flint\{prod\}\*|~\*/);
    assert.match(rules, /^reset on resetchannels -@all /, 'starts from nothing');
  });

  test('master: every key of its cluster only; client and reader: read-only on state', () => {
    assert.match(aclRules('prod', 'master').join(' '), /~flint\{prod\}\* \+@all -@dangerous /);
    assert.match(aclRules('prod', 'client').join(' '), /%R~flint\{prod\}\* \+@read -@dangerous /);
    const reader = aclRules('prod', 'reader').join(' ');
    assert.doesNotMatch(reader, /\+@write|\+@all|\(~flint\{prod\}:master:\* \+@/, 'no write command anywhere');
    assert.doesNotMatch(reader, /secret|~flint\{prod\}\*/, "no pattern reaches the applications' secrets");
    assert.match(reader, /%R~flint\{prod\}:app:\* .*%R~flint\{prod\}:workers:\* /);
  });

  test('names, invalid worker ids, aclfile lines with the password as SHA-256 only', () => {
    assert.equal(aclUserName('prod', 'worker', 'w1'), 'flint-prod-worker-w1');
    assert.deepEqual(clusterAclUsers('prod', ['w1', 'w1', 'w2']).map((u) => u.name), ['flint-prod-master', 'flint-prod-client', 'flint-prod-reader', 'flint-prod-worker-w1', 'flint-prod-worker-w2']);
    assert.throws(() => aclRules('prod', 'worker', 'w*'), /worker id 'w\*' is invalid/);
    assert.throws(() => aclRules('prod', 'worker'), /worker id '' is invalid/);
    const line = aclFileLine(clusterAclUsers('prod', [])[0]!, 'a'.repeat(64));
    assert.match(line, /^user flint-prod-master on resetchannels .* #a{64}$/);
    assert.doesNotMatch(line, / reset /);
  });
});
