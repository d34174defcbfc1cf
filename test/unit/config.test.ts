/**
 * Unit tests of protocol/config.ts: Spark's defaults, how sources layer, how
 * values are parsed (durations, memory, enums, aliases), the errors bad values
 * give, Spark's id formatting, and that docs/configuration.md is complete.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  CONFIG_KEYS,
  ConfigError,
  envNameFor,
  formatSparkId,
  loadConfig,
  parseBool,
  parseConfFlags,
  parseDurationMs,
  parseMemoryMb,
  parsePropertiesText,
  sparkTimestamp,
} from '../../protocol/config.ts';
import { CONFIG_DOC_PATH, renderConfigDoc } from '../../infra/gen-config-doc.ts';
import { makeTempDir } from '../helpers/isolation.ts';

/** load: loadConfig with an empty environment, so the machine's FLINT_* variables never leak in. */
const load = (options: Parameters<typeof loadConfig>[0] = {}) => loadConfig({ env: {}, ...options });

const INT_MAX = 2147483647;

describe('defaults equal Spark\'s', () => {
  test('master and deploy keys', () => {
    const config = load();
    assert.equal(config.workerTimeoutMs, 60_000);
    assert.equal(config.deadWorkerPersistence, 15);
    assert.equal(config.retainedApplications, 200);
    assert.equal(config.retainedDrivers, 200);
    assert.equal(config.maxExecutorRetries, 10);
    assert.equal(config.spreadOut, true);
    assert.equal(config.spreadOutDrivers, true);
    assert.equal(config.workerSelectionPolicy, 'CORES_FREE_DESC');
    assert.equal(config.defaultCores, INT_MAX);
    assert.equal(config.maxDrivers, INT_MAX);
    assert.equal(config.appNumberModulo, undefined);
    assert.equal(config.appIdPattern, 'app-%s-%04d');
    assert.equal(config.driverIdPattern, 'driver-%s-%04d');
    assert.equal(config.useAppNameAsAppId, false);
    assert.equal(config.get('spark.master.port'), 7077);
    assert.equal(config.get('spark.master.ui.port'), 8080);
    assert.equal(config.get('spark.master.rest.port'), 6066);
    assert.equal(config.get('spark.ui.killEnabled'), true);
    assert.equal(config.get('spark.decommission.enabled'), false);
    assert.equal(config.get('spark.master.ui.title'), undefined);
  });

  test('worker keys', () => {
    const config = load();
    assert.equal(config.get('spark.worker.cores'), undefined);
    assert.equal(config.get('spark.worker.memory'), undefined);
    assert.equal(config.get('spark.worker.initialRegistrationRetries'), 6);
    assert.equal(config.get('spark.worker.maxRegistrationRetries'), 16);
    assert.equal(config.get('spark.worker.cleanup.enabled'), true);
    assert.equal(config.get('spark.worker.cleanup.interval'), 1800 * 1000);
    assert.equal(config.get('spark.worker.cleanup.appDataTtl'), 7 * 24 * 3600 * 1000);
    assert.equal(config.get('spark.worker.ui.retainedExecutors'), 1000);
    assert.equal(config.get('spark.worker.ui.retainedDrivers'), 1000);
    assert.equal(config.get('spark.worker.driverTerminateTimeout'), 10_000);
    assert.equal(config.get('spark.worker.executorStateSync.maxAttempts'), 5);
    assert.equal(config.get('spark.worker.idPattern'), 'worker-%s-%s-%d');
    assert.equal(config.get('spark.worker.ui.port'), 8081);
  });

  test('Flint keys', () => {
    const config = load();
    assert.equal(config.cluster, 'default');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.reaperIntervalMs, 1000);
    assert.equal(config.driverCoresFraction, 1);
    assert.equal(config.authSecret, undefined);
    assert.equal(config.get('spark.flint.worker.network'), 'host');
    assert.equal(config.get('spark.flint.worker.runtime'), 'auto');
  });

  test('every value comes from the defaults when nothing else is given', () => {
    const config = load();
    for (const entry of CONFIG_KEYS) {
      if (entry.default === undefined) {
        assert.equal(config.origin[entry.key], undefined, entry.key);
      } else {
        assert.equal(config.origin[entry.key], 'default', entry.key);
        assert.equal(config.raw[entry.key], entry.default, entry.key);
      }
    }
  });

  test('CONFIG_KEYS has no duplicate key or alias, and documents every key', () => {
    const names = CONFIG_KEYS.flatMap((entry) => [entry.key, ...(entry.aliases ?? [])]);
    assert.equal(new Set(names).size, names.length);
    for (const entry of CONFIG_KEYS) assert.ok(entry.doc.length > 10, `${entry.key} needs a doc`);
  });
});

describe('durations', () => {
  test('spark.worker.timeout: a plain number is seconds, as in Spark', () => {
    assert.equal(load({ overrides: { 'spark.worker.timeout': '60' } }).workerTimeoutMs, 60_000);
    assert.equal(load({ overrides: { 'spark.worker.timeout': '5' } }).workerTimeoutMs, 5_000);
    assert.equal(load({ overrides: { 'spark.worker.timeout': '1.5' } }).workerTimeoutMs, 1_500);
  });

  test('ms strings work for every duration key', () => {
    assert.equal(load({ overrides: { 'spark.worker.timeout': '500ms' } }).workerTimeoutMs, 500);
    assert.equal(load({ overrides: { 'spark.worker.timeout': '2m' } }).workerTimeoutMs, 120_000);
    assert.equal(load({ overrides: { 'spark.worker.timeout': '1h' } }).workerTimeoutMs, 3_600_000);
    assert.equal(load({ overrides: { 'spark.flint.reaper.interval': '250ms' } }).reaperIntervalMs, 250);
  });

  test('a plain number is milliseconds for keys whose unit is ms', () => {
    assert.equal(load({ overrides: { 'spark.flint.reaper.interval': '250' } }).reaperIntervalMs, 250);
    assert.equal(load({ overrides: { 'spark.worker.driverTerminateTimeout': '2500' } }).get('spark.worker.driverTerminateTimeout'), 2500);
  });

  test('parseDurationMs', () => {
    assert.equal(parseDurationMs('60', 's'), 60_000);
    assert.equal(parseDurationMs('60'), 60);
    assert.equal(parseDurationMs(' 10s '), 10_000);
    for (const bad of ['abc', '', '-5s', '10 parsecs', 's']) {
      assert.throws(() => parseDurationMs(bad), ConfigError, bad);
    }
  });

  test('property: n seconds is the same as the plain number n in seconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), (n) => {
        assert.equal(parseDurationMs(`${n}s`), n * 1000);
        assert.equal(parseDurationMs(String(n), 's'), n * 1000);
        assert.equal(parseDurationMs(`${n}ms`, 's'), n);
      }),
    );
  });

  test('a duration below the key\'s minimum is refused', () => {
    assert.throws(() => load({ overrides: { 'spark.worker.timeout': '0' } }), /spark\.worker\.timeout="0".*minimum/);
    assert.throws(() => load({ overrides: { 'spark.flint.reaper.interval': '5ms' } }), /spark\.flint\.reaper\.interval/);
  });
});

describe('memory', () => {
  test('Spark\'s memory strings in MB', () => {
    assert.equal(parseMemoryMb('512m'), 512);
    assert.equal(parseMemoryMb('512M'), 512);
    assert.equal(parseMemoryMb('2g'), 2048);
    assert.equal(parseMemoryMb('2gb'), 2048);
    assert.equal(parseMemoryMb('1t'), 1024 * 1024);
    assert.equal(parseMemoryMb('4096'), 4096);
    assert.equal(parseMemoryMb('2048k'), 2);
  });

  test('bad memory strings are refused', () => {
    for (const bad of ['', 'lots', '1.5g', '-1g', '2x', '512k', '0m']) {
      assert.throws(() => parseMemoryMb(bad), ConfigError, bad);
    }
  });

  test('property: n g is 1024 × n MB', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1_000_000 }), (n) => parseMemoryMb(`${n}g`) === n * 1024));
  });

  test('spark.worker.memory is parsed to MB', () => {
    assert.equal(load({ overrides: { 'spark.worker.memory': '4g' } }).get('spark.worker.memory'), 4096);
    assert.throws(() => load({ overrides: { 'spark.worker.memory': 'plenty' } }), /spark\.worker\.memory="plenty" \(from flag\)/);
  });
});

describe('layering: defaults < file < env < flags', () => {
  test('env overrides the properties file, flags override env', async (t) => {
    const dir = await makeTempDir('config-layers');
    t.after(dir.cleanup);
    const file = join(dir.path, 'spark-defaults.conf');
    await writeFile(
      file,
      ['# a comment', 'spark.worker.timeout 10', 'spark.deploy.retainedApplications=50', 'spark.deploy.maxDrivers   7', ''].join('\n'),
    );

    const fromFile = load({ propertiesFile: file });
    assert.equal(fromFile.workerTimeoutMs, 10_000);
    assert.equal(fromFile.retainedApplications, 50);
    assert.equal(fromFile.maxDrivers, 7);
    assert.equal(fromFile.origin['spark.worker.timeout'], 'file');

    const env = { FLINT_SPARK_WORKER_TIMEOUT: '20s', FLINT_SPARK_DEPLOY_RETAINEDAPPLICATIONS: '60' };
    const fromEnv = load({ propertiesFile: file, env });
    assert.equal(fromEnv.workerTimeoutMs, 20_000);
    assert.equal(fromEnv.retainedApplications, 60);
    assert.equal(fromEnv.maxDrivers, 7);
    assert.equal(fromEnv.origin['spark.worker.timeout'], 'env');
    assert.equal(fromEnv.origin['spark.deploy.maxDrivers'], 'file');

    const fromFlags = load({ propertiesFile: file, env, overrides: { 'spark.worker.timeout': '30' } });
    assert.equal(fromFlags.workerTimeoutMs, 30_000);
    assert.equal(fromFlags.retainedApplications, 60);
    assert.equal(fromFlags.origin['spark.worker.timeout'], 'flag');
  });

  test('FLINT_CONF_DIR/spark-defaults.conf < Spark\'s daemon variables < FLINT_* < flags; --properties-file replaces the conf dir\'s file', async (t) => {
    const dir = await makeTempDir('config-confdir');
    t.after(dir.cleanup);
    await writeFile(join(dir.path, 'spark-defaults.conf'), 'spark.master.host 198.51.100.7\nspark.worker.cores 3\nspark.master.ui.port 9090\nspark.deploy.maxDrivers 4\n');
    const fromDir = load({ env: { FLINT_CONF_DIR: dir.path } });
    assert.deepEqual([fromDir.get('spark.master.host'), fromDir.get('spark.worker.cores'), fromDir.get('spark.master.ui.port')], ['198.51.100.7', 3, 9090]);
    assert.equal(fromDir.origin['spark.master.host'], 'file');

    const daemon = {
      FLINT_CONF_DIR: dir.path,
      SPARK_MASTER_HOST: '198.51.100.8',
      SPARK_MASTER_PORT: '7177',
      SPARK_MASTER_WEBUI_PORT: '0',
      SPARK_WORKER_CORES: '5',
      SPARK_WORKER_MEMORY: '2g',
      SPARK_WORKER_DIR: '/srv/flint/work',
      SPARK_WORKER_WEBUI_PORT: '18081',
    };
    const fromDaemon = load({ env: daemon });
    assert.deepEqual(
      ['spark.master.host', 'spark.master.port', 'spark.master.ui.port', 'spark.worker.cores', 'spark.worker.memory', 'spark.flint.worker.dir', 'spark.worker.ui.port'].map((k) => fromDaemon.get(k)),
      ['198.51.100.8', 7177, 0, 5, 2048, '/srv/flint/work', 18081],
    );
    assert.equal(fromDaemon.origin['spark.worker.cores'], 'env');
    assert.equal(fromDaemon.maxDrivers, 4, 'keys no variable sets still come from the file');

    const flintEnv = load({ env: { ...daemon, FLINT_SPARK_WORKER_CORES: '6' } });
    assert.equal(flintEnv.get('spark.worker.cores'), 6, 'FLINT_* wins over SPARK_WORKER_CORES');
    assert.equal(load({ env: daemon, overrides: { 'spark.worker.cores': '7' } }).get('spark.worker.cores'), 7, 'flags win over both');

    const other = join(dir.path, 'other.conf');
    await writeFile(other, 'spark.worker.cores 9\n');
    const replaced = load({ env: { FLINT_CONF_DIR: dir.path }, propertiesFile: other });
    assert.equal(replaced.get('spark.worker.cores'), 9);
    assert.equal(replaced.maxDrivers, INT_MAX, '--properties-file replaces spark-defaults.conf, as in Spark');

    assert.equal(load({ env: { FLINT_CONF_DIR: join(dir.path, 'empty') } }).workerTimeoutMs, 60_000, 'a conf dir without spark-defaults.conf is fine');
    assert.throws(() => load({ env: { SPARK_WORKER_CORES: 'many' } }), /spark\.worker\.cores="many" \(from env\): 'many' is not an integer/);
  });

  test('a missing properties file is a ConfigError naming the path', () => {
    assert.throws(() => load({ propertiesFile: '/nonexistent/flint/spark-defaults.conf' }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /cannot read properties file \/nonexistent\/flint\/spark-defaults\.conf/);
      return true;
    });
  });

  test('an empty environment variable is ignored', () => {
    assert.equal(load({ env: { FLINT_SPARK_WORKER_TIMEOUT: '' } }).workerTimeoutMs, 60_000);
  });

  test('environment names: FLINT_ + the key upper-cased with dots as underscores', () => {
    assert.equal(envNameFor('spark.worker.timeout'), 'FLINT_SPARK_WORKER_TIMEOUT');
    assert.equal(envNameFor('spark.deploy.spreadOutApps'), 'FLINT_SPARK_DEPLOY_SPREADOUTAPPS');
    assert.equal(envNameFor('spark.flint.redis.url'), 'FLINT_SPARK_FLINT_REDIS_URL');
    assert.equal(load({ env: { FLINT_SPARK_FLINT_CLUSTER: 'blue' } }).cluster, 'blue');
  });

  test('keys Flint does not know pass through untouched; get() refuses them', () => {
    const config = load({ overrides: { 'spark.executor.memory': '2g' } });
    assert.equal(config.raw['spark.executor.memory'], '2g');
    assert.equal(config.origin['spark.executor.memory'], 'flag');
    assert.throws(() => config.get('spark.executor.memory'), /unknown configuration key 'spark\.executor\.memory'/);
  });
});

describe('aliases and enums', () => {
  test('spark.deploy.spreadOutApps sets spark.deploy.spreadOut from any source', async (t) => {
    assert.equal(load({ overrides: { 'spark.deploy.spreadOutApps': 'false' } }).spreadOut, false);
    assert.equal(load({ env: { FLINT_SPARK_DEPLOY_SPREADOUTAPPS: 'false' } }).spreadOut, false);
    const dir = await makeTempDir('config-alias');
    t.after(dir.cleanup);
    const file = join(dir.path, 'spark-defaults.conf');
    await writeFile(file, 'spark.deploy.spreadOutApps false\n');
    const config = load({ propertiesFile: file });
    assert.equal(config.spreadOut, false);
    assert.equal(config.origin['spark.deploy.spreadOut'], 'file');
    assert.equal(config.get('spark.deploy.spreadOutApps'), false);
    // The flag beats the file even when one uses the alias and the other the key.
    assert.equal(load({ propertiesFile: file, overrides: { 'spark.deploy.spreadOut': 'true' } }).spreadOut, true);
  });

  test('workerSelectionPolicy is upper-cased and checked, as Spark does', () => {
    assert.equal(load({ overrides: { 'spark.deploy.workerSelectionPolicy': 'memory_free_asc' } }).workerSelectionPolicy, 'MEMORY_FREE_ASC');
    assert.throws(
      () => load({ overrides: { 'spark.deploy.workerSelectionPolicy': 'RANDOM' } }),
      /spark\.deploy\.workerSelectionPolicy="RANDOM" \(from flag\): 'RANDOM' is not one of CORES_FREE_ASC, CORES_FREE_DESC, MEMORY_FREE_ASC, MEMORY_FREE_DESC, WORKER_ID/,
    );
  });

  test('booleans are true or false only', () => {
    assert.equal(parseBool('TRUE'), true);
    assert.equal(parseBool(' false '), false);
    assert.throws(() => parseBool('yes'), /'yes' is not a boolean/);
  });
});

describe('invalid values', () => {
  test('the ConfigError names the key, the value and the source', () => {
    const cases: Array<{ options: Parameters<typeof loadConfig>[0]; key: string; value: string; source: string }> = [
      { options: { overrides: { 'spark.worker.timeout': 'soon' } }, key: 'spark.worker.timeout', value: 'soon', source: 'flag' },
      { options: { overrides: { 'spark.worker.timeout': '' } }, key: 'spark.worker.timeout', value: '', source: 'flag' },
      { options: { env: { FLINT_SPARK_MASTER_PORT: '70000' } }, key: 'spark.master.port', value: '70000', source: 'env' },
      { options: { overrides: { 'spark.deploy.appNumberModulo': '999' } }, key: 'spark.deploy.appNumberModulo', value: '999', source: 'flag' },
      { options: { overrides: { 'spark.deploy.maxExecutorRetries': '-2' } }, key: 'spark.deploy.maxExecutorRetries', value: '-2', source: 'flag' },
      { options: { overrides: { 'spark.deploy.defaultCores': '0' } }, key: 'spark.deploy.defaultCores', value: '0', source: 'flag' },
      { options: { overrides: { 'spark.deploy.retainedDrivers': '1.5' } }, key: 'spark.deploy.retainedDrivers', value: '1.5', source: 'flag' },
      { options: { overrides: { 'spark.flint.deploy.driverCoresFraction': '0' } }, key: 'spark.flint.deploy.driverCoresFraction', value: '0', source: 'flag' },
      { options: { overrides: { 'spark.flint.cluster': 'a b' } }, key: 'spark.flint.cluster', value: 'a b', source: 'flag' },
      { options: { overrides: { 'spark.flint.redis.url': 'http://127.0.0.1:6379' } }, key: 'spark.flint.redis.url', value: 'http://127.0.0.1:6379', source: 'flag' },
      { options: { overrides: { 'spark.deploy.appIdPattern': 'app %s %d' } }, key: 'spark.deploy.appIdPattern', value: 'app %s %d', source: 'flag' },
      { options: { overrides: { 'spark.flint.worker.network': 'bridge' } }, key: 'spark.flint.worker.network', value: 'bridge', source: 'flag' },
      { options: { env: { FLINT_SPARK_UI_KILLENABLED: 'maybe' } }, key: 'spark.ui.killEnabled', value: 'maybe', source: 'env' },
    ];
    for (const { options, key, value, source } of cases) {
      assert.throws(
        () => load(options),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError, `${key}: expected a ConfigError`);
          assert.ok(error.message.includes(`${key}=${JSON.stringify(value)} (from ${source})`), error.message);
          return true;
        },
        key,
      );
    }
  });

  test('every invalid key is reported at once, not only the first', () => {
    assert.throws(
      () => load({ overrides: { 'spark.worker.timeout': 'x', 'spark.master.port': 'y' } }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /spark\.worker\.timeout="x"/);
        assert.match(error.message, /spark\.master\.port="y"/);
        return true;
      },
    );
  });

  test('the edges of ranges are accepted', () => {
    assert.equal(load({ overrides: { 'spark.deploy.appNumberModulo': '1000' } }).appNumberModulo, 1000);
    assert.equal(load({ overrides: { 'spark.deploy.maxExecutorRetries': '-1' } }).maxExecutorRetries, -1);
    assert.equal(load({ overrides: { 'spark.master.port': '65535' } }).get('spark.master.port'), 65535);
    assert.equal(load({ overrides: { 'spark.flint.deploy.driverCoresFraction': '0.5' } }).driverCoresFraction, 0.5);
  });
});

describe('properties text and --conf flags', () => {
  test('parsePropertiesText reads Spark\'s spark-defaults.conf format', () => {
    const text = [
      '# comment',
      '! also a comment',
      '',
      'spark.worker.timeout     30',
      'spark.master.host=127.0.0.2',
      'spark.master.ui.title = My cluster | prod',
      'spark.deploy.maxDrivers:4',
      '  spark.flint.cluster   blue  ',
      'spark.executor.extraJavaOptions -Da=b -Dc=d',
    ].join('\r\n');
    assert.deepEqual(parsePropertiesText(text), {
      'spark.worker.timeout': '30',
      'spark.master.host': '127.0.0.2',
      'spark.master.ui.title': 'My cluster | prod',
      'spark.deploy.maxDrivers': '4',
      'spark.flint.cluster': 'blue',
      'spark.executor.extraJavaOptions': '-Da=b -Dc=d',
    });
  });

  test('a line without a value is an error naming the origin and line', () => {
    assert.throws(() => parsePropertiesText('spark.a 1\nlonely\n', 'conf/spark-defaults.conf'), /conf\/spark-defaults\.conf:2: cannot read 'lonely'/);
  });

  test('parseConfFlags splits at the first =', () => {
    assert.deepEqual(parseConfFlags(['spark.worker.timeout=30', 'spark.executor.extraJavaOptions=-Da=b']), {
      'spark.worker.timeout': '30',
      'spark.executor.extraJavaOptions': '-Da=b',
    });
    assert.throws(() => parseConfFlags(['novalue']), /--conf 'novalue' must be key=value/);
    assert.throws(() => parseConfFlags(['=x']), ConfigError);
  });
});

describe('Spark ids', () => {
  test('formatSparkId formats %s and %0Nd in order, as String.format does', () => {
    assert.equal(formatSparkId('app-%s-%04d', ['20231031224509', 8]), 'app-20231031224509-0008');
    assert.equal(formatSparkId('driver-%s-%04d', ['20231031224459', 19]), 'driver-20231031224459-0019');
    assert.equal(formatSparkId('app-%s-%04d', ['20231031224509', 123456]), 'app-20231031224509-123456');
    assert.equal(formatSparkId('worker-%s-%s-%d', ['20231031224509', '127.0.0.1', 7078]), 'worker-20231031224509-127.0.0.1-7078');
    assert.equal(formatSparkId('app-%s-%4d', ['t', 7]), 'app-t-   7');
  });

  test('sparkTimestamp is yyyyMMddHHmmss in local time', () => {
    assert.equal(sparkTimestamp(new Date(2023, 9, 31, 22, 45, 9).getTime()), '20231031224509');
    assert.equal(sparkTimestamp(new Date(2024, 0, 2, 3, 4, 5).getTime()), '20240102030405');
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(CONFIG_DOC_PATH, 'utf8');

  test('lists every key of CONFIG_KEYS with its environment variable', () => {
    const missing = CONFIG_KEYS.filter((entry) => {
      const rowLine = doc.split('\n').find((line) => line.startsWith(`| \`${entry.key}\``));
      return !rowLine || !rowLine.includes(`\`${envNameFor(entry.key)}\``);
    }).map((entry) => entry.key);
    assert.deepEqual(missing, [], `docs/configuration.md misses ${missing.join(', ')}; run node --import tsx infra/gen-config-doc.ts`);
  });

  test('is what infra/gen-config-doc.ts generates (defaults and meanings up to date)', () => {
    assert.equal(doc, renderConfigDoc(), 'docs/configuration.md is stale; run node --import tsx infra/gen-config-doc.ts');
  });
});
