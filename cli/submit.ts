/**
 * `flint submit`: spark-submit's cluster mode against Flint's REST server. The
 * flags are spark-submit's; the application is a container: the appResource is
 * `docker://<image>` (or --image is given) and the application's arguments
 * become the driver container's command (docs/rest-submission.md has the rule).
 * It prints the submission id on stdout. The command's definition (flags, help)
 * is submit-command.ts, which imports this module only when the command runs.
 */
import { ConfigError, parseConfFlags } from '../protocol/config.ts';
import { DOCKER_RESOURCE_SCHEME, FLINT_IMAGE_PROPERTY, SPARK_COMPATIBLE_VERSION, isMemoryString, memoryStringToMb } from '../protocol/rest.ts';
import { RestClientError, RestSubmissionClient, buildCreateSubmissionRequest, filterSystemEnvironment, isErrorResponse, restBaseUrls } from '../client/rest-client.ts';
import type { CreateSubmissionRequest } from '../protocol/rest.ts';
import {
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  UsageError,
  oneLine,
  resolveCa,
  resolveMaster,
  resolveToken,
  type CommandIo,
} from './command-io.ts';

export interface SubmitFlags {
  master?: string;
  deployMode: string;
  name?: string;
  class?: string;
  image?: string;
  driverCores?: string;
  driverMemory?: string;
  executorCores?: string;
  executorMemory?: string;
  totalExecutorCores?: string;
  supervise?: boolean;
  conf: string[];
  token?: string;
  caFile?: string;
}

/** runSubmit builds the request, sends it, prints the submission id; returns the exit code. */
export async function runSubmit(appResource: string, appArgs: readonly string[], flags: SubmitFlags, io: CommandIo): Promise<number> {
  let request: CreateSubmissionRequest;
  let master: string;
  let ca: Buffer | undefined;
  try {
    master = resolveMaster(flags.master, io.env);
    ca = resolveCa(flags.caFile, io.env);
    restBaseUrls(master);
    request = buildSubmitRequest(appResource, appArgs, flags, master, io.env);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || error instanceof RestClientError) {
      io.err(`flint submit: ${oneLine((error as Error).message)}`);
      return EXIT_USAGE;
    }
    throw error;
  }
  const client = new RestSubmissionClient(master, { token: resolveToken(flags.token, io.env), ca });
  try {
    const { status, body } = await client.createSubmission(request);
    if (isErrorResponse(body)) {
      io.err(`flint submit: the server refused the submission (HTTP ${status}): ${oneLine(body.message)}`);
      return EXIT_FAILED;
    }
    if (body.unknownFields?.length) io.err(`flint submit: warning: the server ignored the fields ${body.unknownFields.join(', ')}`);
    if (!body.success || !body.submissionId) {
      io.err(`flint submit: the master did not accept the driver: ${oneLine(body.message ?? 'no reason given')}`);
      return EXIT_FAILED;
    }
    io.out(body.submissionId);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof RestClientError) {
      io.err(`flint submit: ${oneLine(error.message)}`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

/**
 * buildSubmitRequest: spark-submit's flags as Spark properties. --conf comes
 * first and explicit flags win over it, as in spark-submit. Throws UsageError.
 */
export function buildSubmitRequest(
  appResource: string,
  appArgs: readonly string[],
  flags: SubmitFlags,
  master: string,
  env: Readonly<Record<string, string | undefined>>,
): CreateSubmissionRequest {
  const mode = (flags.deployMode ?? 'cluster').trim().toLowerCase();
  if (mode === 'client') {
    throw new UsageError('--deploy-mode client is not supported: Flint runs every driver on a worker (use --deploy-mode cluster, the default)');
  }
  if (mode !== 'cluster') throw new UsageError(`--deploy-mode '${flags.deployMode}' is not a deploy mode: use cluster`);
  if (!appResource.trim()) throw new UsageError('the appResource is empty: give docker://<image> or a path with --image');

  let properties: Record<string, string>;
  try {
    properties = parseConfFlags(flags.conf ?? []);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const setInt = (flag: string, value: string | undefined, key: string) => {
    if (value === undefined) return;
    if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new UsageError(`${flag} expects a positive integer, got '${value}'`);
    properties[key] = String(Number(value));
  };
  const setMemory = (flag: string, value: string | undefined, key: string) => {
    if (value === undefined) return;
    if (!isMemoryString(value) || (memoryStringToMb(value) ?? 0) < 1) throw new UsageError(`${flag} expects a memory size of at least 1 MB such as 512m or 2g, got '${value}'`);
    properties[key] = value.trim();
  };
  setInt('--driver-cores', flags.driverCores, 'spark.driver.cores');
  setMemory('--driver-memory', flags.driverMemory, 'spark.driver.memory');
  setInt('--executor-cores', flags.executorCores, 'spark.executor.cores');
  setMemory('--executor-memory', flags.executorMemory, 'spark.executor.memory');
  setInt('--total-executor-cores', flags.totalExecutorCores, 'spark.cores.max');
  if (flags.supervise) properties['spark.driver.supervise'] = 'true';
  if (flags.image !== undefined) {
    if (!flags.image.trim()) throw new UsageError('--image is empty');
    properties[FLINT_IMAGE_PROPERTY] = flags.image.trim();
  }
  if (!properties[FLINT_IMAGE_PROPERTY] && !appResource.startsWith(DOCKER_RESOURCE_SCHEME)) {
    throw new UsageError(`no container image: give the appResource as ${DOCKER_RESOURCE_SCHEME}<image> or pass --image <image>`);
  }
  const name = flags.name ?? properties['spark.app.name'] ?? flags.class ?? defaultAppName(appResource);
  if (!name.trim()) throw new UsageError('--name is empty');
  properties['spark.app.name'] = name;
  properties['spark.submit.deployMode'] = 'cluster';
  // Spark's client passes the master it was given; the server rewrites the REST port to the master's.
  properties['spark.master'] ??= master.replace(/^https?:\/\//i, 'spark://');

  return buildCreateSubmissionRequest({
    appResource,
    mainClass: flags.class ?? '',
    appArgs,
    sparkProperties: properties,
    environmentVariables: filterSystemEnvironment(env),
    clientSparkVersion: SPARK_COMPATIBLE_VERSION,
  });
}

/** defaultAppName: `docker://reg/ns/busybox:1.36` → `busybox`; `/path/app.py` → `app`. */
export function defaultAppName(appResource: string): string {
  const withoutScheme = appResource.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const last = withoutScheme.split('/').filter(Boolean).pop() ?? '';
  const base = appResource.startsWith(DOCKER_RESOURCE_SCHEME) ? last.replace(/[@:].*$/, '') : last.replace(/\.[^.]+$/, '');
  return base || 'flint-driver';
}
