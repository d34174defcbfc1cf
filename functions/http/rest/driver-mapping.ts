/**
 * The request → driver mapping of the REST server: a CreateSubmissionRequest
 * (protocol.ts) becomes the container DriverDescription the master is asked to
 * run, checked with the deploy messages' own schema. Pure, like protocol.ts; kept
 * apart from it because only the server needs it, and its zod schema is the
 * slowest thing a client command would otherwise load.
 */
import { DriverDescription, formatIssues } from '../../../protocol/messages.ts';
import {
  DEFAULT_DRIVER_CORES,
  DEFAULT_DRIVER_MEMORY_MB,
  DOCKER_RESOURCE_SCHEME,
  FLINT_COMMAND_PROPERTY,
  FLINT_IMAGE_PROPERTY,
  RestProtocolError,
  memoryStringToMb,
  type CreateSubmissionRequest,
} from '../../../protocol/rest.ts';

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
 * PLACEHOLDER_ALLOWED / PLACEHOLDER_DENIED: the server variables a `{{NAME}}` placeholder
 * may read. Spark substitutes any variable (SPARK-49033/49034); Flint reads only the
 * installation's layout (SPARK_*, JAVA_HOME, Hadoop's and Python's directories), never its
 * own configuration (FLINT_*: the auth secret, the Redis URL) nor a name that looks like a
 * credential, so a token with the `submit` scope cannot copy the server's secrets (a
 * REDIS_URL or DATABASE_URL with a password in it, say) into a driver it controls.
 */
const PLACEHOLDER_ALLOWED = /^(SPARK_[A-Z0-9_]+|JAVA_HOME|HADOOP_HOME|HADOOP_CONF_DIR|YARN_CONF_DIR|PYSPARK_PYTHON|PYSPARK_DRIVER_PYTHON|PYTHONPATH)$/;
const PLACEHOLDER_DENIED = /^FLINT_|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|AUTH|_URL$|_URI$/i;

/** replacePlaceholder: a value that is exactly `{{NAME}}`, with NAME set on the server and allowed (above), becomes its value. */
export function replacePlaceholder(value: string, serverEnv: Readonly<Record<string, string | undefined>>): string {
  const match = /^\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}$/.exec(value);
  if (!match) return value;
  const name = match[1]!;
  const replacement = serverEnv[name];
  if (replacement === undefined || !PLACEHOLDER_ALLOWED.test(name) || PLACEHOLDER_DENIED.test(name)) return value;
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
