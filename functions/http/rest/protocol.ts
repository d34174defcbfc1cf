/**
 * Spark's REST submission protocol (deploy/rest/SubmitRestProtocol*.scala), as
 * pure functions: the message shapes, their validation with Spark's messages,
 * Spark's JSON form (alphabetical top-level keys, nulls omitted, Jackson's
 * indented layout), the ErrorServlet's path messages, and the mapping of a
 * CreateSubmissionRequest to a container DriverDescription.
 *
 * No I/O here: the hono app (server.ts) reads bodies and asks the gateway; the
 * client (client/rest-client.ts) builds requests with the same functions, so a
 * request Flint's CLI sends is exactly what Spark's RestSubmissionClient sends.
 * docs/rest-submission.md describes the mapping and where Flint deliberately
 * differs from Spark.
 */
import { DriverDescription, formatIssues, type DriverStatusResponse, type KillAllDriversResponse, type KillDriverResponse, type SubmitDriverResponse } from '../../../protocol/messages.ts';

/** PROTOCOL_VERSION: the only version of the protocol (RestSubmissionServer.PROTOCOL_VERSION). */
export const PROTOCOL_VERSION = 'v1';

/** SC_UNKNOWN_PROTOCOL_VERSION: Spark's status for an unknown protocol version (not 505). */
export const SC_UNKNOWN_PROTOCOL_VERSION = 468;

/** SPARK_COMPATIBLE_VERSION: the Spark version whose REST protocol Flint speaks; the default server/client version. */
export const SPARK_COMPATIBLE_VERSION = '4.0.0';

/** DEFAULT_BODY_LIMIT_BYTES: largest request body the server reads (1 MiB). */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** Spark's defaults for a driver (deploy/ClientArguments.scala). */
export const DEFAULT_DRIVER_MEMORY_MB = 1024;
export const DEFAULT_DRIVER_CORES = 1;

/** FLINT_IMAGE_PROPERTY / FLINT_COMMAND_PROPERTY: Flint's own submission properties (see docs/rest-submission.md). */
export const FLINT_IMAGE_PROPERTY = 'spark.flint.image';
export const FLINT_COMMAND_PROPERTY = 'spark.flint.command';

/** DOCKER_RESOURCE_SCHEME: an appResource `docker://<image>` names the driver's image. */
export const DOCKER_RESOURCE_SCHEME = 'docker://';

// ---------------------------------------------------------------- message shapes

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** CreateSubmissionRequest: what RestSubmissionClient sends to /v1/submissions/create. */
export interface CreateSubmissionRequest {
  action: 'CreateSubmissionRequest';
  clientSparkVersion: string;
  appResource: string;
  mainClass?: string;
  appArgs: string[];
  sparkProperties: Record<string, string>;
  environmentVariables: Record<string, string>;
  message?: string;
}

interface ResponseBase {
  serverSparkVersion: string;
  message?: string;
  unknownFields?: string[];
}
export interface CreateSubmissionResponse extends ResponseBase { action: 'CreateSubmissionResponse'; success: boolean; submissionId?: string }
export interface KillSubmissionResponse extends ResponseBase { action: 'KillSubmissionResponse'; success: boolean; submissionId: string }
export interface KillAllSubmissionResponse extends ResponseBase { action: 'KillAllSubmissionResponse'; success: boolean }
export interface SubmissionStatusResponse extends ResponseBase {
  action: 'SubmissionStatusResponse';
  success: boolean;
  submissionId: string;
  driverState?: string;
  workerId?: string;
  workerHostPort?: string;
}
export interface ClearResponse extends ResponseBase { action: 'ClearResponse'; success: boolean }
export interface ReadyzResponse extends ResponseBase { action: 'ReadyzResponse'; success: boolean }
/** ErrorResponse: has no `success` field at all (Spark's ErrorResponse leaves it null, so it is omitted). */
export interface ErrorResponse { action: 'ErrorResponse'; serverSparkVersion: string; message: string; highestProtocolVersion?: string }

export type RestResponse =
  | CreateSubmissionResponse
  | KillSubmissionResponse
  | KillAllSubmissionResponse
  | SubmissionStatusResponse
  | ClearResponse
  | ReadyzResponse
  | ErrorResponse;

/**
 * MESSAGE_FIELDS: every field each message class of org.apache.spark.deploy.rest
 * has, and which of them its `validate()` requires. The field lists decide
 * `unknownFields`; the required lists reproduce Spark's "'<name>' is missing in
 * message <Type>." checks for every type.
 */
const COMMON_FIELDS = ['action', 'message'];
const RESPONSE_FIELDS = [...COMMON_FIELDS, 'serverSparkVersion', 'success', 'unknownFields'];
export const MESSAGE_FIELDS: Record<string, { fields: readonly string[]; required: readonly string[] }> = {
  CreateSubmissionRequest: {
    fields: [...COMMON_FIELDS, 'clientSparkVersion', 'appResource', 'mainClass', 'appArgs', 'sparkProperties', 'environmentVariables'],
    required: ['clientSparkVersion', 'sparkProperties', 'appResource', 'appArgs', 'environmentVariables'],
  },
  CreateSubmissionResponse: { fields: [...RESPONSE_FIELDS, 'submissionId'], required: ['serverSparkVersion', 'success'] },
  KillSubmissionResponse: { fields: [...RESPONSE_FIELDS, 'submissionId'], required: ['serverSparkVersion', 'submissionId', 'success'] },
  KillAllSubmissionResponse: { fields: RESPONSE_FIELDS, required: ['serverSparkVersion', 'success'] },
  SubmissionStatusResponse: {
    fields: [...RESPONSE_FIELDS, 'submissionId', 'driverState', 'workerId', 'workerHostPort'],
    required: ['serverSparkVersion', 'submissionId', 'success'],
  },
  ClearResponse: { fields: RESPONSE_FIELDS, required: ['serverSparkVersion', 'success'] },
  ReadyzResponse: { fields: RESPONSE_FIELDS, required: ['serverSparkVersion', 'success'] },
  ErrorResponse: { fields: [...RESPONSE_FIELDS, 'highestProtocolVersion'], required: ['serverSparkVersion', 'message'] },
};

// ---------------------------------------------------------------- JSON form

/**
 * toSparkJson renders a message as Spark's Jackson mapper does: top-level
 * properties in alphabetical order, null/undefined omitted, Jackson's default
 * pretty printer (`"key" : value`, two-space indent, `[ "a", "b" ]`). Nested maps
 * (sparkProperties, environmentVariables) keep their insertion order, as Scala's
 * maps are written in iteration order, not sorted.
 */
export function toSparkJson(message: object): string {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(message).sort()) {
    const value = (message as Record<string, unknown>)[key];
    if (value !== undefined && value !== null) sorted[key] = value;
  }
  return renderJackson(sorted, '');
}

function renderJackson(value: unknown, indent: string): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[ ]';
    return `[ ${value.map((item) => renderJackson(item, indent)).join(', ')} ]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined && v !== null);
    if (entries.length === 0) return '{ }';
    const inner = indent + '  ';
    const lines = entries.map(([k, v]) => `${inner}${JSON.stringify(k)} : ${renderJackson(v, inner)}`);
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

// ---------------------------------------------------------------- reading requests

/** RestProtocolError: a request Spark answers with 400 (JsonProcessingException or SubmitRestProtocolException). */
export class RestProtocolError extends Error {
  override name = 'RestProtocolError';
}

export type ParsedMessage =
  | { kind: 'create'; request: CreateSubmissionRequest; unknownFields: string[] }
  | { kind: 'other'; messageType: string };

/** MAX_ECHOED_BODY: how much of a body without an action is echoed back in the error. */
const MAX_ECHOED_BODY = 2000;

/**
 * parseSubmitMessage reads a body sent to /create: Spark's
 * SubmitRestProtocolMessage.fromJson followed by validate(). Throws
 * RestProtocolError with Spark's text (the caller prefixes "Malformed request: ").
 *
 * A known action of another type is returned as `other` (the server answers
 * "Received message of unexpected type <Type>."); an unknown action is an error
 * here, where Spark fails with a ClassNotFoundException and an empty 500.
 */
export function parseSubmitMessage(body: string): ParsedMessage {
  if (body.trim() === '') throw new RestProtocolError('No content to map due to end-of-input: the request has no JSON body.');
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new RestProtocolError(`Unable to parse the request body as JSON: ${(error as Error).message}`);
  }
  const action = isPlainObject(json) ? json.action : undefined;
  if (typeof action !== 'string') {
    const echoed = body.length > MAX_ECHOED_BODY ? `${body.slice(0, MAX_ECHOED_BODY)}...` : body;
    throw new RestProtocolError(`Action field not found in JSON:\n${echoed}`);
  }
  const spec = MESSAGE_FIELDS[action];
  if (!spec) throw new RestProtocolError(`Unknown message type '${action}': this server understands ${Object.keys(MESSAGE_FIELDS).join(', ')}.`);
  const object = json as Record<string, unknown>;
  if (action !== 'CreateSubmissionRequest') {
    const missing = spec.required.find((field) => object[field] === undefined || object[field] === null);
    if (missing) throw validationFailure(action, `'${missing}' is missing in message ${action}.`);
    return { kind: 'other', messageType: action };
  }
  const request = readCreateSubmissionRequest(object);
  validateCreateSubmissionRequest(request);
  // Optional fields that were null or absent are left out, as Spark's re-serialization omits them.
  const cleaned = Object.fromEntries(Object.entries(request).filter(([, value]) => value !== null)) as unknown as CreateSubmissionRequest;
  return { kind: 'create', request: cleaned, unknownFields: findUnknownFields(object, spec.fields) };
}

/**
 * findUnknownFields: top-level fields of the client's JSON that the server's
 * message class does not have (Spark diffs the client JSON against its own
 * re-serialization; a field set to null is absent from both).
 */
export function findUnknownFields(json: Record<string, unknown>, knownFields: readonly string[]): string[] {
  return Object.keys(json).filter((key) => !knownFields.includes(key) && json[key] !== null);
}

type PartialCreate = {
  [K in keyof CreateSubmissionRequest]?: CreateSubmissionRequest[K] | null;
};

/**
 * readCreateSubmissionRequest converts the JSON object to the message's fields as
 * Jackson would: scalars are coerced to strings where a string is expected, null
 * means unset, and a value of the wrong shape (an object for appResource, an
 * array for sparkProperties) is a mapping error.
 */
function readCreateSubmissionRequest(json: Record<string, unknown>): PartialCreate {
  return {
    action: 'CreateSubmissionRequest',
    message: readString(json, 'message'),
    clientSparkVersion: readString(json, 'clientSparkVersion'),
    appResource: readString(json, 'appResource'),
    mainClass: readString(json, 'mainClass'),
    appArgs: readStringArray(json, 'appArgs'),
    sparkProperties: readStringMap(json, 'sparkProperties'),
    environmentVariables: readStringMap(json, 'environmentVariables'),
  };
}

function coerceScalar(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function readString(json: Record<string, unknown>, field: string): string | null {
  const value = json[field];
  if (value === undefined || value === null) return null;
  const text = coerceScalar(value);
  if (text === undefined) throw new RestProtocolError(`Cannot deserialize field '${field}': expected a string, got ${describeJson(value)}.`);
  return text;
}

function readStringArray(json: Record<string, unknown>, field: string): string[] | null {
  const value = json[field];
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) throw new RestProtocolError(`Cannot deserialize field '${field}': expected an array of strings, got ${describeJson(value)}.`);
  return value.map((item, index) => {
    const text = coerceScalar(item);
    if (text === undefined) throw new RestProtocolError(`Cannot deserialize field '${field}[${index}]': expected a string, got ${describeJson(item)}.`);
    return text;
  });
}

function readStringMap(json: Record<string, unknown>, field: string): Record<string, string> | null {
  const value = json[field];
  if (value === undefined || value === null) return null;
  if (!isPlainObject(value)) throw new RestProtocolError(`Cannot deserialize field '${field}': expected an object of strings, got ${describeJson(value)}.`);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    const text = coerceScalar(item);
    if (text === undefined) throw new RestProtocolError(`Cannot deserialize field '${field}.${key}': expected a string, got ${describeJson(item)}.`);
    out[key] = text;
  }
  return out;
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function validationFailure(messageType: string, cause: string): RestProtocolError {
  return new RestProtocolError(`Validation of message ${messageType} failed!\nCaused by: ${cause}`);
}

/**
 * validateCreateSubmissionRequest: CreateSubmissionRequest.doValidate of Spark
 * 4.x, check for check and in the same order, with Spark's messages.
 */
export function validateCreateSubmissionRequest(request: PartialCreate): asserts request is CreateSubmissionRequest {
  const type = 'CreateSubmissionRequest';
  const missing = (name: string) => validationFailure(type, `'${name}' is missing in message ${type}.`);
  if (request.action == null) throw validationFailure(type, `The action field is missing in ${type}`);
  if (request.clientSparkVersion == null) throw missing('clientSparkVersion');
  if (request.sparkProperties == null) throw validationFailure(type, 'No Spark properties set!');
  if (request.appResource == null) throw missing('appResource');
  if (request.appArgs == null) throw missing('appArgs');
  if (request.environmentVariables == null) throw missing('environmentVariables');
  const properties = request.sparkProperties;
  if (properties['spark.app.name'] === undefined) throw missing('spark.app.name');
  const checks: Array<[string, string, (value: string) => boolean]> = [
    ['spark.driver.supervise', 'boolean', isJavaBoolean],
    ['spark.driver.cores', 'numeric', isJavaDouble],
    ['spark.cores.max', 'numeric', isJavaDouble],
    ['spark.driver.memory', 'memory', isMemoryString],
    ['spark.executor.memory', 'memory', isMemoryString],
  ];
  for (const [key, valueType, accepts] of checks) {
    const value = properties[key];
    if (value !== undefined && !accepts(value)) {
      throw validationFailure(type, `Property '${key}' expected ${valueType} value: actual was '${value}'.`);
    }
  }
}

/** isJavaBoolean: Scala's String.toBoolean (case-insensitive true/false, nothing else). */
export function isJavaBoolean(value: string): boolean {
  return /^(true|false)$/i.test(value);
}

/** isJavaDouble: what java.lang.Double.parseDouble accepts (decimal forms, with Java's optional d/f suffix). */
export function isJavaDouble(value: string): boolean {
  return /^[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)$/.test(value.trim());
}

const MEMORY_PATTERN = /^\s*(\d+)\s*(b|k|kb|m|mb|g|gb|t|tb|p|pb)?\s*$/i;

/** isMemoryString: Spark's byte-string grammar (JavaUtils.byteStringAs): digits and an optional unit. */
export function isMemoryString(value: string): boolean {
  return MEMORY_PATTERN.test(value);
}

/**
 * memoryStringToMb: a Spark memory string in MB. A plain number is MB (Flint's
 * convention everywhere, as in protocol/config.ts), `b`/`k` are bytes and KiB.
 * Returns undefined for anything that is not a memory string.
 */
export function memoryStringToMb(value: string): number | undefined {
  const match = MEMORY_PATTERN.exec(value);
  if (!match) return undefined;
  const amount = Number(match[1]);
  const unit = (match[2] ?? 'm').toLowerCase().replace(/b$/, '') || 'b';
  const bytesPerUnit: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.floor((amount * bytesPerUnit[unit]!) / 1024 ** 2);
}

// ---------------------------------------------------------------- request → DriverDescription

export interface DriverMappingContext {
  /** the master URL drivers are given when the request sets no spark.master */
  masterUrl: string;
  /** image for requests that name none (a plain Spark client's JVM request); unset refuses them */
  defaultImage?: string;
  /** the REST server's port: `:<restPort>` in spark.master becomes the master URL's port, as Spark does */
  restPort?: number;
  /** the server's environment, for `{{NAME}}` placeholders */
  serverEnv: Readonly<Record<string, string | undefined>>;
}

/**
 * PLACEHOLDER_DENIED: server variables a `{{NAME}}` placeholder may not read.
 * Spark substitutes any variable (SPARK-49033/49034); Flint refuses its own
 * configuration (FLINT_*, which holds the auth secret and the Redis URL) and
 * names that look like credentials, so a token with the `submit` scope cannot
 * copy the server's secrets into a driver it controls.
 */
const PLACEHOLDER_DENIED = /^FLINT_|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY/i;

/** replacePlaceholder: a value that is exactly `{{NAME}}`, with NAME set on the server and allowed, becomes its value. */
export function replacePlaceholder(value: string, serverEnv: Readonly<Record<string, string | undefined>>): string {
  const match = /^\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}$/.exec(value);
  if (!match) return value;
  const name = match[1]!;
  const replacement = serverEnv[name];
  if (replacement === undefined || PLACEHOLDER_DENIED.test(name)) return value;
  return replacement;
}

/** JAVA_CLASS_NAME: a dotted Java identifier (`org.apache.spark.deploy.SparkSubmit`), which is not a container command. */
const JAVA_CLASS_NAME = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$/;

const IMAGE_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/;
const ENV_NAME = /^[^=\0]+$/;

/** imageFromRequest: spark.flint.image, else an appResource `docker://<image>`, else undefined (the server's default image, if any, applies). */
export function imageFromRequest(appResource: string, properties: Record<string, string>): string | undefined {
  const fromProperty = properties[FLINT_IMAGE_PROPERTY]?.trim();
  if (fromProperty) return fromProperty;
  if (appResource.startsWith(DOCKER_RESOURCE_SCHEME)) return appResource.slice(DOCKER_RESOURCE_SCHEME.length).trim() || undefined;
  return undefined;
}

/**
 * commandFromRequest: the driver container's argv.
 *  - spark.flint.command (a JSON array of strings) is the prefix, then appArgs;
 *  - otherwise a mainClass that is empty or a Java class name (Spark's
 *    DriverWrapper/SparkSubmit classes mean nothing in a container) is dropped:
 *    the command is appArgs;
 *  - otherwise the command is [mainClass, ...appArgs].
 * An empty command runs the image's own CMD.
 */
export function commandFromRequest(mainClass: string, appArgs: readonly string[], properties: Record<string, string>): string[] {
  const override = properties[FLINT_COMMAND_PROPERTY];
  if (override !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(override);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((item) => typeof item === 'string')) {
      throw new RestProtocolError(`Property '${FLINT_COMMAND_PROPERTY}' expected a non-empty JSON array of strings: actual was '${override}'.`);
    }
    return [...(parsed as string[]), ...appArgs];
  }
  if (mainClass === '' || JAVA_CLASS_NAME.test(mainClass)) return [...appArgs];
  return [mainClass, ...appArgs];
}

/**
 * buildDriverDescription: Spark's StandaloneSubmitRequestServlet.buildDriverDescription
 * for containers. Placeholders are replaced in property and environment values,
 * SPARK_LOCAL_IP/SPARK_LOCAL_HOSTNAME are dropped, spark.master defaults to the
 * master URL (and `:<restPort>` is rewritten to the master's port), memory, cores,
 * supervise and `spark.driver.resource.<name>.amount` become the driver's
 * requirements, and every property is kept for the driver's application.
 * Throws RestProtocolError (400) when the request cannot become a driver.
 */
export function buildDriverDescription(request: CreateSubmissionRequest, context: DriverMappingContext): DriverDescription {
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.sparkProperties)) properties[key] = replacePlaceholder(value, context.serverEnv);

  const masterPort = /:(\d+)\/?$/.exec(context.masterUrl)?.[1];
  const requestedMaster = properties['spark.master'];
  properties['spark.master'] =
    requestedMaster === undefined
      ? context.masterUrl
      : context.restPort !== undefined && masterPort !== undefined
        ? requestedMaster.split(`:${context.restPort}`).join(`:${masterPort}`)
        : requestedMaster;

  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.environmentVariables)) {
    if (/^SPARK_LOCAL_(IP|HOSTNAME)$/.test(name)) continue;
    if (!ENV_NAME.test(name)) throw new RestProtocolError(`Environment variable name '${name}' is not valid: it must be non-empty and contain no '=' or NUL.`);
    env[name] = replacePlaceholder(value, context.serverEnv);
  }

  const image = imageFromRequest(request.appResource, properties) ?? (context.defaultImage?.trim() || undefined);
  if (image === undefined) {
    throw new RestProtocolError(
      `No container image for the driver: set the property '${FLINT_IMAGE_PROPERTY}' or give the appResource as ${DOCKER_RESOURCE_SCHEME}<image> (was '${request.appResource}'); this server has no default driver image.`,
    );
  }
  if (!IMAGE_REFERENCE.test(image) || image.length > 512) {
    throw new RestProtocolError(`Container image '${image}' is not a valid image reference (letters, digits and . _ / : @ -, at most 512 characters).`);
  }

  const mainClass = request.mainClass ?? '';
  const memoryText = properties['spark.driver.memory'];
  const memoryMB = memoryText === undefined ? DEFAULT_DRIVER_MEMORY_MB : memoryStringToMb(memoryText);
  if (memoryMB === undefined || memoryMB < 1) {
    throw new RestProtocolError(`Property 'spark.driver.memory' expected at least 1 MB: actual was '${memoryText}'.`);
  }
  const cores = readPositiveInt(properties, 'spark.driver.cores', DEFAULT_DRIVER_CORES);
  const supervise = properties['spark.driver.supervise'] === undefined ? false : properties['spark.driver.supervise'].toLowerCase() === 'true';

  const description = {
    name: properties['spark.app.name'],
    appResource: request.appResource,
    mainClass,
    image,
    command: commandFromRequest(mainClass, request.appArgs, properties),
    env,
    memoryMB,
    cores,
    supervise,
    resourceReqs: driverResourceRequirements(properties),
    sparkProperties: properties,
  };
  const parsed = DriverDescription.safeParse(description);
  if (!parsed.success) throw new RestProtocolError(`The request does not make a valid driver: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

function readPositiveInt(properties: Record<string, string>, key: string, fallback: number): number {
  const text = properties[key];
  if (text === undefined) return fallback;
  const value = Number(text.trim());
  if (!/^\s*\+?\d+\s*$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new RestProtocolError(`Property '${key}' expected a positive integer for a driver: actual was '${text}'.`);
  }
  return value;
}

/** driverResourceRequirements: `spark.driver.resource.<name>.amount` → [{name, amount}], sorted by name as Spark sorts them. */
export function driverResourceRequirements(properties: Record<string, string>): Array<{ name: string; amount: number }> {
  const out: Array<{ name: string; amount: number }> = [];
  for (const [key, value] of Object.entries(properties)) {
    const match = /^spark\.driver\.resource\.([^.]+)\.amount$/.exec(key);
    if (!match) continue;
    const amount = Number(value.trim());
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(amount) || amount < 1) {
      throw new RestProtocolError(`Property '${key}' expected a positive integer: actual was '${value}'.`);
    }
    out.push({ name: match[1]!, amount });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// ---------------------------------------------------------------- responses

/** errorResponse: Spark's handleError (no `success` field). */
export function errorResponse(serverSparkVersion: string, message: string, highestProtocolVersion?: string): ErrorResponse {
  return { action: 'ErrorResponse', serverSparkVersion, message, highestProtocolVersion };
}

export function createSubmissionResponse(serverSparkVersion: string, reply: SubmitDriverResponse, unknownFields: string[]): CreateSubmissionResponse {
  return {
    action: 'CreateSubmissionResponse',
    serverSparkVersion,
    message: reply.message,
    success: reply.success,
    submissionId: reply.driverId,
    unknownFields: unknownFields.length ? unknownFields : undefined,
  };
}

export function killSubmissionResponse(serverSparkVersion: string, submissionId: string, reply: KillDriverResponse): KillSubmissionResponse {
  return { action: 'KillSubmissionResponse', serverSparkVersion, message: reply.message, submissionId, success: reply.success };
}

export function killAllSubmissionResponse(serverSparkVersion: string, reply: KillAllDriversResponse): KillAllSubmissionResponse {
  return { action: 'KillAllSubmissionResponse', serverSparkVersion, message: reply.message, success: reply.success };
}

/** submissionStatusResponse: `success` is `found`; a driver exception becomes "Exception from the cluster:\n<exception>". */
export function submissionStatusResponse(serverSparkVersion: string, submissionId: string, reply: DriverStatusResponse): SubmissionStatusResponse {
  return {
    action: 'SubmissionStatusResponse',
    serverSparkVersion,
    submissionId,
    success: reply.found,
    driverState: reply.state,
    workerId: reply.workerId,
    workerHostPort: reply.workerHostPort,
    message: reply.exception !== undefined ? `Exception from the cluster:\n${reply.exception}` : undefined,
  };
}

export function clearResponse(serverSparkVersion: string, cleared: boolean): ClearResponse {
  return { action: 'ClearResponse', serverSparkVersion, message: '', success: cleared };
}

export function readyzResponse(serverSparkVersion: string): ReadyzResponse {
  return { action: 'ReadyzResponse', serverSparkVersion, message: '', success: true };
}

/** validateResponse: the response's own validate(); a reason when a required field is missing (the server then answers 500). */
export function validateResponse(response: RestResponse): string | undefined {
  const spec = MESSAGE_FIELDS[response.action]!;
  const fields = response as unknown as Record<string, unknown>;
  const missing = spec.required.find((field) => fields[field] === undefined || fields[field] === null);
  return missing ? `Validation of message ${response.action} failed!\nCaused by: '${missing}' is missing in message ${response.action}.` : undefined;
}

// ---------------------------------------------------------------- paths

/**
 * parseSubmissionId: Spark's parseSubmissionId over the path after the action
 * (`/kill/any/thing` → `any`); undefined when missing or empty.
 */
export function parseSubmissionId(pathAfterAction: string): string | undefined {
  if (!pathAfterAction) return undefined;
  const first = pathAfterAction.replace(/^\//, '').split('/')[0];
  if (!first) return undefined;
  try {
    return decodeURIComponent(first);
  } catch {
    return first;
  }
}

/** errorServletResponse: Spark's ErrorServlet for a path no servlet serves: the message and status (400, or 468 for an unknown version). */
export function errorServletResponse(path: string, serverSparkVersion: string): { status: 400 | 468; body: ErrorResponse } {
  const parts = path.replace(/^\//, '').split('/').filter((part) => part !== '');
  let message: string;
  let versionMismatch = false;
  if (parts.length === 0) message = 'Missing protocol version.';
  else if (parts[0] === PROTOCOL_VERSION && parts.length === 1) message = 'Missing the /submissions prefix.';
  else if (parts[0] === PROTOCOL_VERSION && parts[1] === 'submissions') {
    message = 'Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz.';
  } else if (parts[0] === PROTOCOL_VERSION) {
    // Spark's pattern match reports `/v1/other` as "Unknown protocol version 'v1'" (468);
    // the version is right, the prefix is what is missing.
    message = 'Missing the /submissions prefix.';
  } else {
    versionMismatch = true;
    message = `Unknown protocol version '${safeSegment(parts[0]!)}'.`;
  }
  message += ` Please submit requests through http://[host]:[port]/${PROTOCOL_VERSION}/submissions/...`;
  return versionMismatch
    ? { status: SC_UNKNOWN_PROTOCOL_VERSION, body: errorResponse(serverSparkVersion, message, PROTOCOL_VERSION) }
    : { status: 400, body: errorResponse(serverSparkVersion, message) };
}

function safeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment).slice(0, 200);
  } catch {
    return segment.slice(0, 200);
  }
}
