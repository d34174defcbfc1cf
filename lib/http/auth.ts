/**
 * Authentication of Flint's mutating HTTP routes (REST submission server, and
 * the UI's kill buttons): bearer tokens that are JWTs signed with HS256 using
 * `spark.flint.auth.secret`, checked with node:crypto alone (createHmac +
 * timingSafeEqual), with a required `exp` and space-separated scopes in the
 * `scope` claim:
 *
 *   submit  create a submission (start a driver)
 *   kill    kill one driver or all of them (and kills from the UI)
 *   admin   clear completed drivers and apps, decommission workers (the UI's
 *           /workers/kill/), the queue board; implies every other scope
 *
 * Why: CVE-2018-11770 — Spark's REST server ran anything for anyone who could
 * reach it. Flint therefore refuses every mutating request when no secret is
 * configured (there is no "open" mode), and `assertSafeBind` refuses to listen
 * beyond loopback without a secret. Read-only routes (status, readyz) need no
 * token, as in Spark.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { errorResponse, toSparkJson, SPARK_COMPATIBLE_VERSION } from '../../protocol/rest.ts';

export const SCOPES = ['submit', 'kill', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** MIN_SECRET_LENGTH: HS256 wants a key of at least 256 bits (RFC 7518 §3.2). */
export const MIN_SECRET_LENGTH = 32;

/** SECRET_KEY: the configuration key holding the secret, named in every message an operator sees. */
export const SECRET_KEY = 'spark.flint.auth.secret';

export interface TokenClaims {
  /** who the token was minted for (informational) */
  sub?: string;
  /** space-separated scopes */
  scope: string;
  /** issued at, seconds since the epoch */
  iat?: number;
  /** expiry, seconds since the epoch (required) */
  exp: number;
  nbf?: number;
}

export class AuthConfigError extends Error {
  override name = 'AuthConfigError';
}

/** assertUsableSecret: a configured secret must be long enough to make HS256 meaningful. */
export function assertUsableSecret(secret: string): void {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new AuthConfigError(
      `${SECRET_KEY} is ${secret.length} characters long; use at least ${MIN_SECRET_LENGTH} (HS256 needs a 256-bit key; e.g. \`openssl rand -base64 48\`)`,
    );
  }
}

/** parseScopes: "submit,kill" or "submit kill" → ['submit', 'kill']; an unknown scope is an error. */
export function parseScopes(text: string | readonly string[]): Scope[] {
  const items = (typeof text === 'string' ? text.split(/[\s,]+/) : text.flatMap((t) => t.split(/[\s,]+/))).filter((s) => s !== '');
  if (items.length === 0) throw new AuthConfigError(`no scope given: use one or more of ${SCOPES.join(', ')}`);
  const out: Scope[] = [];
  for (const item of items) {
    if (!(SCOPES as readonly string[]).includes(item)) throw new AuthConfigError(`unknown scope '${item}': use one or more of ${SCOPES.join(', ')}`);
    if (!out.includes(item as Scope)) out.push(item as Scope);
  }
  return out;
}

export interface SignTokenOptions {
  scope: string | readonly string[];
  ttlSeconds: number;
  subject?: string;
  /** clock in ms (tests); default Date.now() */
  now?: number;
}

/** signToken mints an HS256 JWT carrying `scope`, `iat`, `exp` and optionally `sub`. */
export function signToken(secret: string, options: SignTokenOptions): string {
  assertUsableSecret(secret);
  if (!Number.isFinite(options.ttlSeconds) || options.ttlSeconds <= 0) {
    throw new AuthConfigError(`token lifetime must be a positive number of seconds, got ${options.ttlSeconds}`);
  }
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  const claims: TokenClaims = { scope: parseScopes(options.scope).join(' '), iat, exp: iat + Math.ceil(options.ttlSeconds) };
  if (options.subject) claims.sub = options.subject;
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify(claims));
  return `${header}.${payload}.${hmac(secret, `${header}.${payload}`).toString('base64url')}`;
}

export type VerifyResult = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * verifyToken checks an HS256 JWT: three base64url parts, header alg HS256 (no
 * `none`, no algorithm switching), a signature equal in constant time, an `exp`
 * in the future, an `nbf` (if any) in the past and a string `scope`.
 */
export function verifyToken(token: string, secret: string, now: number = Date.now()): VerifyResult {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) return { ok: false, reason: 'not a JWT (expected three base64url parts)' };
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJsonPart(headerPart);
  if (!header || header.alg !== 'HS256') return { ok: false, reason: 'unsupported token algorithm (only HS256 is accepted)' };
  const expected = hmac(secret, `${headerPart}.${payloadPart}`);
  const given = Buffer.from(signaturePart, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature' };
  const claims = decodeJsonPart(payloadPart);
  if (!claims) return { ok: false, reason: 'the payload is not a JSON object' };
  const seconds = now / 1000;
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return { ok: false, reason: 'the token has no exp (expiry) claim' };
  if (seconds >= claims.exp) return { ok: false, reason: `the token expired at ${new Date(claims.exp * 1000).toISOString()}` };
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || seconds < claims.nbf)) return { ok: false, reason: 'the token is not valid yet (nbf)' };
  if (typeof claims.scope !== 'string') return { ok: false, reason: 'the token has no scope claim' };
  return { ok: true, claims: claims as unknown as TokenClaims };
}

/** hasScope: `admin` implies every scope. */
export function hasScope(claims: TokenClaims, scope: Scope): boolean {
  const granted = claims.scope.split(/\s+/);
  return granted.includes(scope) || granted.includes('admin');
}

/**
 * extractToken: `Authorization: Bearer <jwt>`, or the bare JWS as Spark's
 * JWSFilter expects it (so a Spark client configured for JWSFilter works too).
 */
export function extractToken(authorization: string | undefined): string | undefined {
  // a header longer than any token is no token; and no pattern here can backtrack (an
  // unauthenticated header of dots once took seconds per request on `\S+\.\S+\.\S+`)
  if (!authorization || authorization.length > MAX_AUTHORIZATION_LENGTH) return undefined;
  const trimmed = authorization.trim();
  const bearer = /^Bearer\s+([^\s]+)$/i.exec(trimmed);
  const candidate = bearer ? bearer[1]! : trimmed;
  return JWS_SHAPE.test(candidate) ? candidate : bearer ? candidate : undefined;
}

/** MAX_AUTHORIZATION_LENGTH: Flint's tokens are a few hundred bytes; Spark's JWS ones not much more. */
export const MAX_AUTHORIZATION_LENGTH = 8192;

/** JWS_SHAPE: three dot-separated segments without whitespace or dots of their own (linear to match). */
const JWS_SHAPE = /^[^\s.]+\.[^\s.]+\.[^\s.]+$/;

export type AuthDecision = { ok: true; claims: TokenClaims } | { ok: false; status: 401 | 403; message: string };

/** authorize: the whole decision for one request, without hono (the middleware and tests use it). */
export function authorize(authorization: string | undefined, scope: Scope, secret: string | undefined, now: number = Date.now()): AuthDecision {
  if (!secret) {
    return {
      ok: false,
      status: 401,
      message:
        `This server has no ${SECRET_KEY} configured, so it refuses every request that submits, kills or clears. ` +
        `Set ${SECRET_KEY} on the master and send a token minted with \`flint token --scope ${scope}\` (Authorization: Bearer <token>).`,
    };
  }
  const token = extractToken(authorization);
  if (!token) {
    return {
      ok: false,
      status: 401,
      message: `Missing bearer token: this request needs a token with the '${scope}' scope (Authorization: Bearer <token>; mint one with \`flint token --scope ${scope}\`).`,
    };
  }
  const verified = verifyToken(token, secret, now);
  if (!verified.ok) return { ok: false, status: 401, message: `Invalid bearer token: ${verified.reason}.` };
  if (!hasScope(verified.claims, scope)) {
    return { ok: false, status: 403, message: `The token does not grant the '${scope}' scope (it grants: ${verified.claims.scope || 'nothing'}).` };
  }
  return verified;
}

export interface AuthVariables {
  /** the verified claims of the request's token, set by requireScope */
  authClaims: TokenClaims;
}

export interface RequireScopeOptions {
  /** the configured secret; undefined refuses every request (no open mode) */
  secret: string | undefined;
  /** serverSparkVersion of the ErrorResponse body */
  serverSparkVersion?: string;
  /** clock in ms (tests) */
  now?: () => number;
  /** renders a refusal; default: Spark's ErrorResponse JSON */
  onDenied?: (c: Context, status: 401 | 403, message: string) => Response | Promise<Response>;
}

/**
 * requireScope: hono middleware letting a request through only with a valid
 * token granting `scope`. 401 without a secret, without a token, or with a bad
 * or expired one; 403 with a valid token lacking the scope. The body is an
 * ErrorResponse, and `WWW-Authenticate` says what is wrong (RFC 6750).
 */
export function requireScope(scope: Scope, options: RequireScopeOptions): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async function requireScopeMiddleware(c, next) {
    const decision = authorize(c.req.header('authorization'), scope, options.secret, options.now ? options.now() : Date.now());
    if (decision.ok) {
      c.set('authClaims', decision.claims);
      await next();
      return;
    }
    const challenge =
      decision.status === 403
        ? `Bearer realm="flint", error="insufficient_scope", scope="${scope}"`
        : `Bearer realm="flint"${options.secret && extractToken(c.req.header('authorization')) ? ', error="invalid_token"' : ''}`;
    c.header('WWW-Authenticate', challenge);
    if (options.onDenied) return options.onDenied(c, decision.status, decision.message);
    const body = toSparkJson(errorResponse(options.serverSparkVersion ?? SPARK_COMPATIBLE_VERSION, decision.message));
    return c.body(body, decision.status, { 'Content-Type': 'application/json; charset=utf-8' });
  };
}

/** isLoopbackHost: 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    if (h === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/**
 * assertSafeBind refuses to listen on a non-loopback address without a secret,
 * and checks a configured secret is long enough.
 */
export function assertSafeBind(host: string, secret: string | undefined): void {
  if (secret) {
    assertUsableSecret(secret);
    return;
  }
  if (!isLoopbackHost(host)) {
    throw new AuthConfigError(
      `refusing to listen on ${host} without ${SECRET_KEY}: the REST server would run anything for anyone who can reach it (CVE-2018-11770)`,
    );
  }
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function hmac(secret: string, data: string): Buffer {
  return createHmac('sha256', secret).update(data).digest();
}

function decodeJsonPart(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
