/**
 * Spark's REST submission protocol (deploy/rest/SubmitRestProtocol*.scala), as
 * pure functions: the message shapes, their validation with Spark's messages,
 * Spark's JSON form (alphabetical top-level keys, nulls omitted, Jackson's
 * indented layout) and the ErrorServlet's path messages. The mapping of a
 * CreateSubmissionRequest to a container DriverDescription is server-side only,
 * in driver-mapping.ts: it validates with zod, which the client commands
 * (`flint submit`, `status`, `kill`) need not load.
 *
 * No I/O here: the hono app (server.ts) reads bodies and asks the gateway; the
 * client (client/rest-client.ts) builds requests with the same functions, so a
 * request Flint's CLI sends is exactly what Spark's RestSubmissionClient sends.
 * docs/rest-submission.md describes the mapping and where Flint deliberately
 * differs from Spark.
 */
import type { DriverStatusResponse, KillAllDriversResponse, KillDriverResponse, SubmitDriverResponse } from './messages.ts';
import { HTTP_BODY_LIMIT_BYTES } from './limits.ts';

/** PROTOCOL_VERSION: the only version of the protocol (RestSubmissionServer.PROTOCOL_VERSION). */
export const PROTOCOL_VERSION = 'v1';

/** SC_UNKNOWN_PROTOCOL_VERSION: Spark's status for an unknown protocol version (not 505). */
export const SC_UNKNOWN_PROTOCOL_VERSION = 468;

/** SPARK_COMPATIBLE_VERSION: the Spark version whose REST protocol Flint speaks; the default server/client version. */
export const SPARK_COMPATIBLE_VERSION = '4.0.0';

/** DEFAULT_BODY_LIMIT_BYTES: largest request body the server reads (2 MiB: above the description limit, so an oversized field is named, not cut off). */
export const DEFAULT_BODY_LIMIT_BYTES = HTTP_BODY_LIMIT_BYTES;

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
