/**
 * Flint Redis URLs (lib/redis.ts redisTargetFromUrl): the forms each deployment is
 * named by, and a clear error for every malformed one (the password never shown).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { redactRedisUrl, redisTargetFromUrl } from '../../lib/redis.ts';

describe('redisTargetFromUrl: good URLs', () => {
  test('redis:// with credentials and a database; rediss:// turns TLS on', () => {
    const target = redisTargetFromUrl('redis://flint:s%40cret@redis.internal:6380/2', { name: 'n' });
    assert.equal(target.kind, 'redis');
    assert.deepEqual(
      { ...target.options },
      { connectionName: 'n', maxRetriesPerRequest: 20, enableAutoPipelining: false, lazyConnect: false, host: 'redis.internal', port: 6380, username: 'flint', password: 's@cret', db: 2, tls: undefined },
    );
    const tls = redisTargetFromUrl('rediss://redis.internal');
    assert.equal(tls.kind, 'redis');
    assert.deepEqual([tls.options.host, tls.options.port, tls.options.db, tls.options.tls], ['redis.internal', 6379, 0, {}]);
  });

  test('blocking connections get maxRetriesPerRequest null (BullMQ needs it)', () => {
    const target = redisTargetFromUrl('redis://127.0.0.1:6379', { blocking: true });
    assert.equal(target.kind === 'redis' && target.options.maxRetriesPerRequest, null);
    const cluster = redisTargetFromUrl('redis-cluster://127.0.0.1:7000', { blocking: true });
    assert.equal(cluster.kind === 'cluster' && cluster.options.redisOptions?.maxRetriesPerRequest, null);
  });

  test('sentinel:// lists several sentinels, default port 26379, master name from the path', () => {
    const target = redisTargetFromUrl('sentinel://:pw@s1:26380,s2,[::1]:26381/prod');
    assert.equal(target.kind, 'redis');
    assert.deepEqual(target.options.sentinels, [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }, { host: '::1', port: 26381 }]);
    assert.equal(target.options.name, 'prod');
    assert.equal(target.options.password, 'pw');
    const unnamed = redisTargetFromUrl('sentinel://s1:26379');
    assert.equal(unnamed.kind === 'redis' && unnamed.options.name, 'mymaster');
  });

  test('redis-cluster:// gives startup nodes and Cluster options; rediss-cluster:// turns TLS on for every node', () => {
    const target = redisTargetFromUrl('redis-cluster://admin:p%2Fw@10.0.0.1:7000,10.0.0.2:7001,node3/', { name: 'flint-master' });
    assert.equal(target.kind, 'cluster');
    assert.ok(target.kind === 'cluster');
    assert.deepEqual(target.nodes, [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: 'node3', port: 6379 }]);
    assert.equal(target.options.enableReadyCheck, true);
    assert.equal(target.options.maxRedirections, 16);
    assert.equal(target.options.scaleReads, 'master');
    assert.deepEqual(target.options.redisOptions, { connectionName: 'flint-master', maxRetriesPerRequest: 20, username: 'admin', password: 'p/w', tls: undefined });
    const tls = redisTargetFromUrl('rediss-cluster://a:1');
    assert.ok(tls.kind === 'cluster');
    assert.deepEqual(tls.options.redisOptions?.tls, {});
    assert.deepEqual(tls.nodes, [{ host: 'a', port: 1 }]);
  });

  test('schemes are case-insensitive', () => {
    assert.equal(redisTargetFromUrl('Redis-Cluster://a:1').kind, 'cluster');
  });
});

describe('redisTargetFromUrl: bad URLs get a clear error', () => {
  const cases: [url: string, message: RegExp][] = [
    ['localhost:6379', /invalid Redis URL 'localhost:6379': unsupported scheme: use redis:\/\/, rediss:\/\/, sentinel:\/\/.* or redis-cluster:\/\//],
    ['http://127.0.0.1:6379', /unsupported scheme/],
    ['redis://127.0.0.1:6379/zero', /database 'zero' is not a number/],
    ['redis://[::1', /not a URL/],
    ['redis-cluster://', /no host: list host:port/],
    ['redis-cluster://a:7000,,b:7001', /an empty entry in the host list/],
    ['redis-cluster://a:7000,b:seven', /port 'seven' is not a number from 1 to 65535/],
    ['redis-cluster://a:0', /port '0' is not a number from 1 to 65535/],
    ['redis-cluster://a:70000', /port '70000' is not a number from 1 to 65535/],
    ['redis-cluster://a:7000/3', /Redis Cluster has only database 0/],
    ['redis-cluster://a:7000?tls=true', /query parameters are not supported/],
    ['redis-cluster://::1:7000', /'::1:7000' is not host\[:port\] \(write IPv6 addresses as \[::1\]:port\)/],
    ['sentinel://s1:26379,s2:x/prod', /port 'x'/],
    ['redis-cluster://u:%zz@a:7000', /malformed percent-encoding/],
    ['redis-cluster://u:p#w@a:7000', /a fragment/],
  ];
  for (const [url, message] of cases) {
    test(url, () => {
      assert.throws(() => redisTargetFromUrl(url), (error: Error) => {
        assert.match(error.message, message);
        assert.match(error.message, /^invalid Redis URL '/);
        return true;
      });
    });
  }

  test('the password is not shown', () => {
    assert.throws(() => redisTargetFromUrl('redis-cluster://flint:hunter2@a:port'), (error: Error) => {
      assert.doesNotMatch(error.message, /hunter2/);
      assert.match(error.message, /flint:\*\*\*@a:port/);
      return true;
    });
    assert.equal(redactRedisUrl('redis://:pw@h:1/0'), 'redis://:***@h:1/0');
    assert.equal(redactRedisUrl('redis://h:1'), 'redis://h:1');
    // an unencoded '@' or '/' in the password is still hidden whole
    assert.equal(redactRedisUrl('redis://u:p@ss@h:1'), 'redis://u:***@h:1');
    assert.throws(() => redisTargetFromUrl('sentinel://u:se/cret@h:1,h2:2/name'), (error: Error) => {
      assert.doesNotMatch(error.message, /se\/cret|cret/);
      return true;
    });
  });
});
