/**
 * RestSubmissionClient: Spark's RestSubmissionClient for Flint's REST server
 * (functions/http/rest/server.ts), used by `flint submit`, `flint status` and
 * `flint kill`. Requests are built with the server's own protocol module, so
 * they have exactly the shape a Spark client sends; a bearer token is added
 * when given. https:// masters are verified against the system's CAs, plus a
 * given CA bundle (`ca`).
 */
import {
  PROTOCOL_VERSION,
  SPARK_COMPATIBLE_VERSION,
  toSparkJson,
  type CreateSubmissionRequest,
  type CreateSubmissionResponse,
  type ClearResponse,
  type ErrorResponse,
  type KillAllSubmissionResponse,
  type KillSubmissionResponse,
  type ReadyzResponse,
  type SubmissionStatusResponse,
} from '../protocol/rest.ts';
import { fetchTrusting, type FetchLike } from './trusting-fetch.ts';

export class RestClientError extends Error {
  override name = 'RestClientError';
}

export interface CreateSubmissionInput {
  appResource: string;
  mainClass?: string;
  appArgs?: readonly string[];
  sparkProperties: Record<string, string>;
  environmentVariables?: Record<string, string>;
  clientSparkVersion?: string;
}

/** buildCreateSubmissionRequest: the CreateSubmissionRequest Spark's client builds (every field set, lists possibly empty). */
export function buildCreateSubmissionRequest(input: CreateSubmissionInput): CreateSubmissionRequest {
  return {
    action: 'CreateSubmissionRequest',
    appArgs: [...(input.appArgs ?? [])],
    appResource: input.appResource,
    clientSparkVersion: input.clientSparkVersion ?? SPARK_COMPATIBLE_VERSION,
    environmentVariables: { ...(input.environmentVariables ?? {}) },
    mainClass: input.mainClass ?? '',
    sparkProperties: { ...input.sparkProperties },
  };
}

/**
 * filterSystemEnvironment: the client's environment variables sent with a
 * submission, as Spark's client chooses them: SPARK_* except SPARK_ENV_LOADED,
 * SPARK_HOME and SPARK_CONF_DIR (which describe the client's installation).
 */
export function filterSystemEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith('SPARK_')) continue;
    if (name === 'SPARK_ENV_LOADED' || name === 'SPARK_HOME' || name === 'SPARK_CONF_DIR') continue;
    out[name] = value;
  }
  return out;
}

/**
 * restBaseUrls: the HTTP base URLs of a `--master` value. `spark://host:port`
 * means http (as in Spark); several masters may be given comma-separated
 * (`spark://a:6066,b:6066`) and are tried in order.
 */
export function restBaseUrls(master: string): string[] {
  const trimmed = master.trim();
  const scheme = /^([a-z]+):\/\//i.exec(trimmed)?.[1]?.toLowerCase();
  if (!scheme) throw new RestClientError(`master URL '${master}' has no scheme: use http://host:port or spark://host:port`);
  if (!['spark', 'http', 'https'].includes(scheme)) throw new RestClientError(`master URL '${master}' must start with spark://, http:// or https://`);
  const hosts = trimmed.slice(scheme.length + 3).replace(/\/+$/, '').split(',');
  return hosts.map((host) => {
    const text = host.trim();
    if (!text || /[/\s?#]/.test(text)) throw new RestClientError(`master URL '${master}' has an invalid host '${host}'`);
    const url = `${scheme === 'https' ? 'https' : 'http'}://${text}`;
    try {
      new URL(url);
    } catch {
      throw new RestClientError(`master URL '${master}' has an invalid host '${host}'`);
    }
    return url;
  });
}

/** RestResult: the HTTP status and the decoded response (an ErrorResponse when the server refused). */
export interface RestResult<T> {
  status: number;
  url: string;
  body: T | ErrorResponse;
}

export interface RestClientOptions {
  /** bearer token for create, kill, killall and clear */
  token?: string;
  /** per-request timeout (default 30 s) */
  timeoutMs?: number;
  /** PEM CA certificates trusted for https:// masters besides the system's (e.g. the CA that signed the masters' certificates) */
  ca?: string | Buffer;
  fetch?: FetchLike;
}

export class RestSubmissionClient {
  private readonly baseUrls: string[];
  private readonly fetchImpl: FetchLike;

  constructor(
    master: string,
    private readonly options: RestClientOptions = {},
  ) {
    this.baseUrls = restBaseUrls(master);
    this.fetchImpl = options.fetch ?? (options.ca !== undefined ? fetchTrusting(options.ca) : fetch);
  }

  createSubmission(request: CreateSubmissionRequest): Promise<RestResult<CreateSubmissionResponse>> {
    return this.call('POST', 'create', toSparkJson(request));
  }

  killSubmission(submissionId: string): Promise<RestResult<KillSubmissionResponse>> {
    return this.call('POST', `kill/${encodeURIComponent(submissionId)}`);
  }

  killAllSubmissions(): Promise<RestResult<KillAllSubmissionResponse>> {
    return this.call('POST', 'killall');
  }

  requestSubmissionStatus(submissionId: string): Promise<RestResult<SubmissionStatusResponse>> {
    return this.call('GET', `status/${encodeURIComponent(submissionId)}`);
  }

  clear(): Promise<RestResult<ClearResponse>> {
    return this.call('POST', 'clear');
  }

  readyz(): Promise<RestResult<ReadyzResponse>> {
    return this.call('GET', 'readyz');
  }

  /** call tries each master in order; only a failure to connect moves on to the next one. */
  private async call<T>(method: 'GET' | 'POST', action: string, body?: string): Promise<RestResult<T>> {
    const failures: string[] = [];
    for (const base of this.baseUrls) {
      const url = `${base}/${PROTOCOL_VERSION}/submissions/${action}`;
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['Content-Type'] = 'application/json;charset=UTF-8';
      if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method, headers, body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000) });
      } catch (error) {
        failures.push(`${base}: ${describeFetchError(error)}`);
        continue;
      }
      const text = await response.text();
      return { status: response.status, url, body: decodeResponse<T>(text, response.status, url) };
    }
    throw new RestClientError(`cannot reach the REST server (${failures.join('; ')})`);
  }
}

function decodeResponse<T>(text: string, status: number, url: string): T | ErrorResponse {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json) || typeof (json as { action?: unknown }).action !== 'string') {
    const excerpt = text.trim().slice(0, 200);
    throw new RestClientError(`the server at ${url} answered HTTP ${status} without a protocol message${excerpt ? `: ${excerpt}` : ''}`);
  }
  return json as T | ErrorResponse;
}

function describeFetchError(error: unknown): string {
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'timed out';
  const code = err.cause?.code;
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return `${code}: the server's certificate is not trusted (give the CA that signed it with --ca-file, or spark.ssl.standalone.trustStore)`;
  }
  return code ?? err.cause?.message ?? err.message ?? String(error);
}

/** isErrorResponse narrows a RestResult body to an ErrorResponse. */
export function isErrorResponse(body: { action: string }): body is ErrorResponse {
  return body.action === 'ErrorResponse';
}
