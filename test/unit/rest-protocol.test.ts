/**
 * Spark's REST submission protocol as pure functions: JSON form (the golden
 * JSONs of SubmitRestProtocolSuite), CreateSubmissionRequest validation with
 * Spark's messages, the ErrorServlet's paths, and the mapping of a request to a
 * container DriverDescription (docs/rest-submission.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RestProtocolError,
  createSubmissionResponse,
  errorResponse,
  errorServletResponse,
  isJavaDouble,
  isMemoryString,
  killSubmissionResponse,
  memoryStringToMb,
  parseSubmissionId,
  parseSubmitMessage,
  submissionStatusResponse,
  toSparkJson,
  validateCreateSubmissionRequest,
  validateResponse,
  type CreateSubmissionRequest,
} from '../../protocol/rest.ts';
import { buildDriverDescription, commandFromRequest, replacePlaceholder } from '../../functions/http/rest/driver-mapping.ts';
import { buildCreateSubmissionRequest, filterSystemEnvironment, restBaseUrls } from '../../client/rest-client.ts';

/** compact re-renders JSON without whitespace, keeping key order (json4s compact(render(parse(...)))). */
function compact(json: string): string {
  return JSON.stringify(JSON.parse(json));
}

const CONTEXT = { masterUrl: 'spark://127.0.0.1:7077', restPort: 6066, serverEnv: {} };

/** The example body of Spark's docs/spark-standalone.md (reference section 6.2), byte for byte. */
const SPARK_DOCS_EXAMPLE = `{"action":"CreateSubmissionRequest","appArgs":["/opt/spark/examples/src/main/python/pi.py","10"],
 "appResource":"","clientSparkVersion":"","environmentVariables":{},
 "mainClass":"org.apache.spark.deploy.SparkSubmit",
 "sparkProperties":{"spark.master":"spark://master:7077","spark.app.name":"Spark Pi",
   "spark.driver.memory":"1g","spark.driver.cores":"1","spark.jars":""}}`;

function request(overrides: Partial<CreateSubmissionRequest> = {}): CreateSubmissionRequest {
  return {
    action: 'CreateSubmissionRequest',
    clientSparkVersion: '4.0.0',
    appResource: 'docker://flint-test-busybox:latest',
    mainClass: '',
    appArgs: ['echo', 'hello'],
    sparkProperties: { 'spark.app.name': 'hello' },
    environmentVariables: {},
    ...overrides,
  };
}

function protocolError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof RestProtocolError, `expected RestProtocolError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected a RestProtocolError');
}

// ---------------------------------------------------------------- golden JSONs (SubmitRestProtocolSuite)

test('CreateSubmissionResponse matches the golden JSON', () => {
  const json = toSparkJson(createSubmissionResponse('1.2.3', { success: true, driverId: 'driver_123', message: undefined as unknown as string }, []));
  assert.equal(compact(json), compact('{"action":"CreateSubmissionResponse","serverSparkVersion":"1.2.3","submissionId":"driver_123","success":true}'));
});

test('KillSubmissionResponse matches the golden JSON', () => {
  const json = toSparkJson({ ...killSubmissionResponse('1.2.3', 'driver_123', { driverId: 'driver_123', success: true, message: '' }), message: undefined });
  assert.equal(compact(json), compact('{"action":"KillSubmissionResponse","serverSparkVersion":"1.2.3","submissionId":"driver_123","success":true}'));
});

test('SubmissionStatusResponse matches the golden JSON', () => {
  const json = toSparkJson(
    submissionStatusResponse('1.2.3', 'driver_123', { found: true, state: 'RUNNING', workerId: 'worker_123', workerHostPort: '1.2.3.4:7780' }),
  );
  assert.equal(
    compact(json),
    compact('{"action":"SubmissionStatusResponse","driverState":"RUNNING","serverSparkVersion":"1.2.3","submissionId":"driver_123","success":true,"workerHostPort":"1.2.3.4:7780","workerId":"worker_123"}'),
  );
});

test('ErrorResponse matches the golden JSON and has no success field', () => {
  const json = toSparkJson(errorResponse('1.2.3', 'Field not found in submit request: X'));
  assert.equal(compact(json), compact('{"action":"ErrorResponse","message":"Field not found in submit request: X","serverSparkVersion":"1.2.3"}'));
  assert.equal('success' in JSON.parse(json), false);
});

test("CreateSubmissionRequest built by the client matches Spark's golden request JSON", () => {
  // Insertion order of the golden JSON's map: Scala writes maps in iteration order, not sorted.
  const sparkProperties: Record<string, string> = {
    'spark.driver.extraLibraryPath': 'pickle.jar',
    'spark.jars': 'mayonnaise.jar,ketchup.jar',
    'spark.driver.supervise': 'false',
    'spark.app.name': 'SparkPie',
    'spark.cores.max': '10000',
    'spark.driver.memory': '512m',
    'spark.files': 'fireball.png',
    'spark.driver.cores': '180',
    'spark.driver.extraJavaOptions': ' -Dslices=5 -Dcolor=mostly_red',
    'spark.executor.memory': '256m',
    'spark.driver.extraClassPath': 'food-coloring.jar',
  };
  const built = buildCreateSubmissionRequest({
    appResource: 'honey-walnut-cherry.jar',
    mainClass: 'org.apache.spark.examples.SparkPie',
    appArgs: ['two slices', 'a hint of cinnamon'],
    sparkProperties,
    environmentVariables: { PATH: '/dev/null' },
    clientSparkVersion: '1.2.3',
  });
  const golden = `{
    "action" : "CreateSubmissionRequest",
    "appArgs" : [ "two slices", "a hint of cinnamon" ],
    "appResource" : "honey-walnut-cherry.jar",
    "clientSparkVersion" : "1.2.3",
    "environmentVariables" : { "PATH" : "/dev/null" },
    "mainClass" : "org.apache.spark.examples.SparkPie",
    "sparkProperties" : {
      "spark.driver.extraLibraryPath" : "pickle.jar", "spark.jars" : "mayonnaise.jar,ketchup.jar",
      "spark.driver.supervise" : "false", "spark.app.name" : "SparkPie", "spark.cores.max" : "10000",
      "spark.driver.memory" : "512m", "spark.files" : "fireball.png", "spark.driver.cores" : "180",
      "spark.driver.extraJavaOptions" : " -Dslices=5 -Dcolor=mostly_red", "spark.executor.memory" : "256m",
      "spark.driver.extraClassPath" : "food-coloring.jar"
    }
  }`;
  assert.equal(compact(toSparkJson(built)), compact(golden));
  // and the server reads it back unchanged, with nothing unknown
  const parsed = parseSubmitMessage(toSparkJson(built));
  assert.equal(parsed.kind, 'create');
  assert.deepEqual(parsed.kind === 'create' && parsed.request, built);
  assert.deepEqual(parsed.kind === 'create' && parsed.unknownFields, []);
});

test("toSparkJson uses Jackson's layout: sorted top-level keys, ' : ', two-space indent, nulls omitted", () => {
  const json = toSparkJson({ success: true, action: 'ReadyzResponse', message: '', serverSparkVersion: '4.0.0', unknownFields: undefined, other: null });
  assert.equal(json, '{\n  "action" : "ReadyzResponse",\n  "message" : "",\n  "serverSparkVersion" : "4.0.0",\n  "success" : true\n}');
  assert.equal(toSparkJson({ b: [], a: {} }), '{\n  "a" : { },\n  "b" : [ ]\n}');
});

// ---------------------------------------------------------------- validation (CreateSubmissionRequest.doValidate)

test('validation follows Spark: each missing field and each bad property, with Spark’s message', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['clientSparkVersion', { clientSparkVersion: null }, "'clientSparkVersion' is missing in message CreateSubmissionRequest."],
    ['sparkProperties', { sparkProperties: null }, 'No Spark properties set!'],
    ['appResource', { appResource: null }, "'appResource' is missing in message CreateSubmissionRequest."],
    ['appArgs', { appArgs: null }, "'appArgs' is missing in message CreateSubmissionRequest."],
    ['environmentVariables', { environmentVariables: null }, "'environmentVariables' is missing in message CreateSubmissionRequest."],
    ['spark.app.name', { sparkProperties: {} }, "'spark.app.name' is missing in message CreateSubmissionRequest."],
    ['supervise', { sparkProperties: { 'spark.app.name': 'a', 'spark.driver.supervise': 'nope, never' } }, "Property 'spark.driver.supervise' expected boolean value: actual was 'nope, never'."],
    ['driver cores', { sparkProperties: { 'spark.app.name': 'a', 'spark.driver.cores': 'one hundred feet' } }, "Property 'spark.driver.cores' expected numeric value: actual was 'one hundred feet'."],
    ['cores.max', { sparkProperties: { 'spark.app.name': 'a', 'spark.cores.max': 'two men' } }, "Property 'spark.cores.max' expected numeric value: actual was 'two men'."],
    ['driver memory', { sparkProperties: { 'spark.app.name': 'a', 'spark.driver.memory': 'lots' } }, "Property 'spark.driver.memory' expected memory value: actual was 'lots'."],
    ['executor memory', { sparkProperties: { 'spark.app.name': 'a', 'spark.executor.memory': '1.5g' } }, "Property 'spark.executor.memory' expected memory value: actual was '1.5g'."],
  ];
  for (const [label, change, expected] of cases) {
    const message = protocolError(() => validateCreateSubmissionRequest({ ...request(), ...change } as never));
    assert.equal(message, `Validation of message CreateSubmissionRequest failed!\nCaused by: ${expected}`, label);
  }
  // every optional property in its valid form passes (the values of SubmitRestProtocolSuite)
  validateCreateSubmissionRequest(
    request({
      sparkProperties: {
        'spark.app.name': 'SparkPie',
        'spark.driver.supervise': 'FALSE',
        'spark.driver.cores': '180',
        'spark.cores.max': '10000',
        'spark.driver.memory': '1g',
        'spark.executor.memory': '256m',
      },
    }),
  );
});

test("numeric and memory grammars are Java's Double.parseDouble and Spark's byte strings", () => {
  for (const ok of ['1', '1.5', '-2', '.5', '1e3', '2d', ' 3 ', 'NaN', 'Infinity']) assert.ok(isJavaDouble(ok), ok);
  for (const bad of ['', 'one', '1,5', '0x10', '1.2.3']) assert.ok(!isJavaDouble(bad), bad);
  for (const ok of ['512m', '2g', '4096', '1TB', '100k', '10b']) assert.ok(isMemoryString(ok), ok);
  for (const bad of ['', '1.5g', 'g', '-1m', 'lots']) assert.ok(!isMemoryString(bad), bad);
  assert.equal(memoryStringToMb('2g'), 2048);
  assert.equal(memoryStringToMb('4096'), 4096);
  assert.equal(memoryStringToMb('1048576k'), 1024);
  assert.equal(memoryStringToMb('1mb'), 1);
  assert.equal(memoryStringToMb('10b'), 0);
  assert.equal(memoryStringToMb('x'), undefined);
});

// ---------------------------------------------------------------- reading bodies

test('parseSubmitMessage rejects empty, malformed, non-object and action-less bodies with Spark’s messages', () => {
  assert.match(protocolError(() => parseSubmitMessage('')), /no JSON body/);
  assert.match(protocolError(() => parseSubmitMessage('{"action": "CreateSubmissionRequest",')), /^Unable to parse the request body as JSON/);
  assert.match(protocolError(() => parseSubmitMessage('"hello, world"')), /^Action field not found in JSON:\n"hello, world"/);
  assert.match(protocolError(() => parseSubmitMessage('[1,2]')), /^Action field not found in JSON/);
  const renamed = toSparkJson(request()).replaceAll('action', 'fraction');
  assert.match(protocolError(() => parseSubmitMessage(renamed)), /^Action field not found in JSON/);
  assert.match(protocolError(() => parseSubmitMessage('{"action": 42}')), /^Action field not found in JSON/);
  assert.match(protocolError(() => parseSubmitMessage('{"action": "NoSuchRequest"}')), /^Unknown message type 'NoSuchRequest'/);
  assert.match(protocolError(() => parseSubmitMessage(JSON.stringify({ ...request(), appArgs: 'x' }))), /field 'appArgs': expected an array/);
  assert.match(protocolError(() => parseSubmitMessage(JSON.stringify({ ...request(), sparkProperties: { 'spark.app.name': { a: 1 } } }))), /sparkProperties\.spark\.app\.name/);
});

test('parseSubmitMessage coerces scalars to strings as Jackson does', () => {
  const parsed = parseSubmitMessage(JSON.stringify({ ...request(), sparkProperties: { 'spark.app.name': 'a', 'spark.driver.cores': 2 }, appArgs: [1, true] }));
  assert.ok(parsed.kind === 'create');
  assert.equal(parsed.request.sparkProperties['spark.driver.cores'], '2');
  assert.deepEqual(parsed.request.appArgs, ['1', 'true']);
});

test('a known message of another type is recognised (unexpected type) after its own validation', () => {
  assert.deepEqual(parseSubmitMessage('{"action":"KillSubmissionResponse","serverSparkVersion":"1","submissionId":"d","success":true}'), {
    kind: 'other',
    messageType: 'KillSubmissionResponse',
  });
  assert.match(
    protocolError(() => parseSubmitMessage('{"action":"ErrorResponse","serverSparkVersion":"1"}')),
    /Validation of message ErrorResponse failed!\nCaused by: 'message' is missing in message ErrorResponse\./,
  );
});

test('unknownFields lists the client fields the server does not know, in the client’s order', () => {
  const parsed = parseSubmitMessage(JSON.stringify({ ...request(), tomato: 'not-a-fruit', potato: 'not-po-tah-to', ignoredNull: null }));
  assert.ok(parsed.kind === 'create');
  assert.deepEqual(parsed.unknownFields, ['tomato', 'potato']);
});

test("the example request of Spark's documentation is accepted unchanged", () => {
  const parsed = parseSubmitMessage(SPARK_DOCS_EXAMPLE);
  assert.ok(parsed.kind === 'create');
  assert.deepEqual(parsed.unknownFields, []);
  assert.equal(parsed.request.sparkProperties['spark.app.name'], 'Spark Pi');
  // A JVM request names no container image: a clear 400, not a crash.
  assert.match(protocolError(() => buildDriverDescription(parsed.request, CONTEXT)), /No container image for the driver: set the property 'spark\.flint\.image'/);
  // With an image it becomes a driver: the SparkSubmit class is dropped, the args are the command.
  const withImage = { ...parsed.request, sparkProperties: { ...parsed.request.sparkProperties, 'spark.flint.image': 'apache/spark:4.0.0' } };
  const desc = buildDriverDescription(withImage, CONTEXT);
  assert.equal(desc.image, 'apache/spark:4.0.0');
  assert.deepEqual(desc.command, ['/opt/spark/examples/src/main/python/pi.py', '10']);
  assert.equal(desc.memoryMB, 1024);
  assert.equal(desc.cores, 1);
  assert.equal(desc.name, 'Spark Pi');
  assert.equal(desc.mainClass, 'org.apache.spark.deploy.SparkSubmit');
  assert.equal(desc.sparkProperties['spark.jars'], '');
});

// ---------------------------------------------------------------- request → DriverDescription

test('buildDriverDescription maps resources, memory, cores, supervise, env and keeps every property', () => {
  const desc = buildDriverDescription(
    request({
      appArgs: ['sleep', '5'],
      sparkProperties: {
        'spark.app.name': 'sleeper',
        'spark.driver.memory': '2g',
        'spark.driver.cores': '3',
        'spark.driver.supervise': 'TRUE',
        'spark.driver.resource.gpu.amount': '2',
        'spark.driver.resource.fpga.amount': '1',
        'spark.executor.memory': '512m',
        'spark.custom': 'kept',
      },
      environmentVariables: { SPARK_LOCAL_IP: '10.0.0.1', SPARK_LOCAL_HOSTNAME: 'h', SPARK_LOCAL_DIRS: '/tmp', APP_MODE: 'batch' },
    }),
    CONTEXT,
  );
  assert.equal(desc.image, 'flint-test-busybox:latest');
  assert.deepEqual(desc.command, ['sleep', '5']);
  assert.equal(desc.memoryMB, 2048);
  assert.equal(desc.cores, 3);
  assert.equal(desc.supervise, true);
  assert.deepEqual(desc.resourceReqs, [
    { name: 'fpga', amount: 1 },
    { name: 'gpu', amount: 2 },
  ]);
  assert.deepEqual(desc.env, { SPARK_LOCAL_DIRS: '/tmp', APP_MODE: 'batch' });
  assert.equal(desc.sparkProperties['spark.custom'], 'kept');
  assert.equal(desc.sparkProperties['spark.executor.memory'], '512m');
  assert.equal(desc.sparkProperties['spark.master'], 'spark://127.0.0.1:7077', 'spark.master defaults to the master URL');
  assert.equal(desc.appResource, 'docker://flint-test-busybox:latest');
});

test('spark.master: the REST port is rewritten to the master port, as Spark does', () => {
  const desc = buildDriverDescription(request({ sparkProperties: { 'spark.app.name': 'a', 'spark.master': 'spark://m1:6066,m2:6066' } }), CONTEXT);
  assert.equal(desc.sparkProperties['spark.master'], 'spark://m1:7077,m2:7077');
});

test('image: spark.flint.image wins over a docker:// appResource; anything else without an image is refused', () => {
  const props = { 'spark.app.name': 'a', 'spark.flint.image': 'other:1' };
  assert.equal(buildDriverDescription(request({ sparkProperties: props }), CONTEXT).image, 'other:1');
  assert.equal(buildDriverDescription(request({ appResource: '/jobs/app.jar', sparkProperties: props }), CONTEXT).image, 'other:1');
  assert.match(protocolError(() => buildDriverDescription(request({ appResource: '/jobs/app.jar' }), CONTEXT)), /No container image/);
  assert.match(protocolError(() => buildDriverDescription(request({ appResource: 'docker://' }), CONTEXT)), /No container image/);
  assert.match(protocolError(() => buildDriverDescription(request({ appResource: 'docker://bad image' }), CONTEXT)), /not a valid image reference/);
});

test('command rule: spark.flint.command prefix, Java class names dropped, other mainClass kept first', () => {
  assert.deepEqual(commandFromRequest('', ['a'], {}), ['a']);
  assert.deepEqual(commandFromRequest('org.apache.spark.deploy.SparkSubmit', ['x.py', '10'], {}), ['x.py', '10']);
  assert.deepEqual(commandFromRequest('/bin/sh', ['-c', 'echo hi'], {}), ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(commandFromRequest('python3.11', ['x.py'], {}), ['python3.11', 'x.py']);
  assert.deepEqual(commandFromRequest('ignored.Main', ['echo hi'], { 'spark.flint.command': '["/bin/sh","-c"]' }), ['/bin/sh', '-c', 'echo hi']);
  for (const bad of ['not json', '[]', '[1]', '"sh"']) {
    assert.match(protocolError(() => commandFromRequest('', [], { 'spark.flint.command': bad })), /expected a non-empty JSON array of strings/, bad);
  }
});

test('placeholders: {{NAME}} becomes the server variable; unset, partial and secret-looking names stay as they are', () => {
  const env = { SPARK_SCALA_VERSION: '2.13', FLINT_SPARK_FLINT_AUTH_SECRET: 's3cret', DB_PASSWORD: 'p' };
  assert.equal(replacePlaceholder('{{SPARK_SCALA_VERSION}}', env), '2.13');
  assert.equal(replacePlaceholder('x{{SPARK_SCALA_VERSION}}', env), 'x{{SPARK_SCALA_VERSION}}');
  assert.equal(replacePlaceholder('{{UNSET_VARIABLE}}', env), '{{UNSET_VARIABLE}}');
  assert.equal(replacePlaceholder('{{FLINT_SPARK_FLINT_AUTH_SECRET}}', env), '{{FLINT_SPARK_FLINT_AUTH_SECRET}}');
  assert.equal(replacePlaceholder('{{DB_PASSWORD}}', env), '{{DB_PASSWORD}}');
  // only the installation's layout is readable: not the server's other variables, which may hold credentials
  const server = { REDIS_URL: 'redis://:pw@db', DATABASE_URL: 'postgres://u:pw@h/db', REDISCLI_AUTH: 'pw', HOME: '/root', JAVA_HOME: '/opt/jdk', SPARK_AUTH_KEY: 'k' };
  for (const name of ['REDIS_URL', 'DATABASE_URL', 'REDISCLI_AUTH', 'HOME', 'SPARK_AUTH_KEY']) assert.equal(replacePlaceholder(`{{${name}}}`, server), `{{${name}}}`, name);
  assert.equal(replacePlaceholder('{{JAVA_HOME}}', server), '/opt/jdk');
  const desc = buildDriverDescription(
    request({
      sparkProperties: { 'spark.app.name': 'a', 'spark.hadoop.fs.s3a.endpoint': '{{SPARK_SCALA_VERSION}}' },
      environmentVariables: { AWS_ENDPOINT_URL: '{{SPARK_SCALA_VERSION}}' },
    }),
    { ...CONTEXT, serverEnv: env },
  );
  assert.equal(desc.env.AWS_ENDPOINT_URL, '2.13');
  assert.equal(desc.sparkProperties['spark.hadoop.fs.s3a.endpoint'], '2.13');
});

test('driver values that cannot make a driver are clear 400s', () => {
  const withProps = (props: Record<string, string>) => request({ sparkProperties: { 'spark.app.name': 'a', ...props } });
  assert.match(protocolError(() => buildDriverDescription(withProps({ 'spark.driver.cores': '1.5' }), CONTEXT)), /'spark\.driver\.cores' expected a positive integer for a driver: actual was '1\.5'/);
  assert.match(protocolError(() => buildDriverDescription(withProps({ 'spark.driver.cores': '0' }), CONTEXT)), /positive integer/);
  assert.match(protocolError(() => buildDriverDescription(withProps({ 'spark.driver.memory': '10b' }), CONTEXT)), /'spark\.driver\.memory' expected at least 1 MB/);
  assert.match(protocolError(() => buildDriverDescription(withProps({ 'spark.driver.resource.gpu.amount': 'two' }), CONTEXT)), /'spark\.driver\.resource\.gpu\.amount' expected a positive integer/);
  assert.match(protocolError(() => buildDriverDescription(request({ environmentVariables: { 'A=B': 'c' } }), CONTEXT)), /Environment variable name 'A=B' is not valid/);
  assert.match(protocolError(() => buildDriverDescription(withProps({ 'spark.app.name': '' }), CONTEXT)), /does not make a valid driver: name/);
});

// ---------------------------------------------------------------- responses and paths

test('validateResponse refuses a response missing a required field (the server then answers 500)', () => {
  assert.equal(validateResponse(killSubmissionResponse('4.0.0', 'd', { driverId: 'd', success: true, message: 'ok' })), undefined);
  const broken = { ...killSubmissionResponse('4.0.0', 'd', { driverId: 'd', success: true, message: 'ok' }), submissionId: undefined as unknown as string };
  assert.match(validateResponse(broken)!, /'submissionId' is missing in message KillSubmissionResponse/);
});

test('a status reply with an exception carries it in the message, as Spark does', () => {
  const response = submissionStatusResponse('4.0.0', 'd', { found: true, state: 'ERROR', exception: 'image not found' });
  assert.equal(response.message, 'Exception from the cluster:\nimage not found');
  assert.equal(response.driverState, 'ERROR');
});

test('parseSubmissionId takes the first non-empty segment', () => {
  assert.equal(parseSubmissionId('/anything'), 'anything');
  assert.equal(parseSubmissionId('/any/thing'), 'any');
  assert.equal(parseSubmissionId('/driver%2D1'), 'driver-1');
  assert.equal(parseSubmissionId(''), undefined);
  assert.equal(parseSubmissionId('/'), undefined);
  assert.equal(parseSubmissionId('//x'), undefined);
});

test("errorServletResponse: Spark's messages, 400, and 468 with highestProtocolVersion for an unknown version", () => {
  const suffix = ' Please submit requests through http://[host]:[port]/v1/submissions/...';
  const cases: Array<[string, number, string]> = [
    ['/', 400, 'Missing protocol version.'],
    ['/v1', 400, 'Missing the /submissions prefix.'],
    ['/v1/', 400, 'Missing the /submissions prefix.'],
    ['/v1/other', 400, 'Missing the /submissions prefix.'],
    ['/v1/submissions', 400, 'Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz.'],
    ['/v1/submissions/bad', 400, 'Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz.'],
    ['/bad-version', 468, "Unknown protocol version 'bad-version'."],
    ['/v2/submissions/create', 468, "Unknown protocol version 'v2'."],
  ];
  for (const [path, status, message] of cases) {
    const result = errorServletResponse(path, '4.0.0');
    assert.equal(result.status, status, path);
    assert.equal(result.body.message, message + suffix, path);
    assert.equal(result.body.highestProtocolVersion, status === 468 ? 'v1' : undefined, path);
  }
});

// ---------------------------------------------------------------- client helpers

test('restBaseUrls: spark:// means http, several masters are kept in order, bad URLs are refused', () => {
  assert.deepEqual(restBaseUrls('spark://127.0.0.1:6066'), ['http://127.0.0.1:6066']);
  assert.deepEqual(restBaseUrls('http://a:6066/'), ['http://a:6066']);
  assert.deepEqual(restBaseUrls('https://a:443'), ['https://a:443']);
  assert.deepEqual(restBaseUrls('spark://a:6066,b:6066'), ['http://a:6066', 'http://b:6066']);
  assert.throws(() => restBaseUrls('a:6066'), /has no scheme/);
  assert.throws(() => restBaseUrls('ftp://a:6066'), /must start with spark:\/\/, http:\/\/ or https:\/\//);
  assert.throws(() => restBaseUrls('spark://a:6066,'), /invalid host/);
});

test('filterSystemEnvironment sends SPARK_* except the client installation variables', () => {
  assert.deepEqual(
    filterSystemEnvironment({ SPARK_VAR: '1', SPARK_ENV_LOADED: '1', SPARK_HOME: '/s', SPARK_CONF_DIR: '/c', PATH: '/bin', HOME: '/root' }),
    { SPARK_VAR: '1' },
  );
});
