/**
 * Who may do what with an application through the app HTTP API (docs/security.md,
 * "Application and executor tokens"). A request carries at most one bearer credential:
 *
 *   an application token (fa1.)  owns exactly one application: reads it whole,
 *                                renews it, follows its events, resizes, kills and
 *                                unregisters it;
 *   an executor token (fe1.)     sends one executor's heartbeats, nothing else;
 *   a cluster token (JWT)        its scopes: `submit` registers applications, `kill`
 *                                kills, unregisters and kills executors of any
 *                                application, `admin` does everything (only with
 *                                spark.flint.auth.secret; without one no JWT is valid);
 *   nothing                      reads, with `env` and secret-looking values redacted.
 *
 * Application keys are read from Redis (keys.appSecret) and cached for a short while;
 * every comparison is constant-time (lib/http/app-tokens.ts).
 */
import type { Keys } from '../../protocol/keys.ts';
import type { RedisConnection } from '../../lib/redis.ts';
import { extractToken, hasScope, verifyToken, SECRET_KEY, type Scope, type TokenClaims } from '../../lib/http/auth.ts';
import { isAppToken, isExecutorToken, tokenKind } from '../../lib/http/app-tokens.ts';

export type Credential =
  | { kind: 'none' }
  | { kind: 'cluster'; token: string; claims: TokenClaims }
  | { kind: 'app'; token: string }
  | { kind: 'executor'; token: string };

export type Refusal = { status: 401 | 403 | 404; message: string };

/** readCredential: the request's bearer credential, or why it is not one (401). */
export function readCredential(authorization: string | undefined, secret: string | undefined, now: number): Credential | Refusal {
  if (authorization === undefined || authorization.trim() === '') return { kind: 'none' };
  const token = extractToken(authorization);
  if (!token) return { status: 401, message: 'Malformed Authorization header: expected "Bearer <token>".' };
  const kind = tokenKind(token);
  if (kind === 'app') return { kind: 'app', token };
  if (kind === 'executor') return { kind: 'executor', token };
  if (!secret) {
    return {
      status: 401,
      message: `This app API has no ${SECRET_KEY} configured, so it accepts no cluster token: use the application's token (returned when it was registered).`,
    };
  }
  const verified = verifyToken(token, secret, now);
  if (!verified.ok) return { status: 401, message: `Invalid bearer token: ${verified.reason}.` };
  return { kind: 'cluster', token, claims: verified.claims };
}

export function isRefusal(value: Credential | Refusal): value is Refusal {
  return 'status' in value;
}

/** AppSecret: what keys.appSecret holds for one application. */
export interface AppSecret {
  key: string;
  /** SHA-256 of the credential that registered the app ('' for none) */
  registrar: string;
}

const KEY_CACHE_MS = 30_000;
const KEY_CACHE_MAX = 10_000;
/** VERIFIED_CACHE_MAX: executor tokens remembered as verified (a beat of each of this many executors per 30 s costs no HMAC). */
const VERIFIED_CACHE_MAX = 100_000;

/**
 * AppKeys reads application keys, caching each for 30 s (a key never changes while
 * its app exists; a forgotten app's key may linger that long, but its state is gone,
 * so nothing more than a 404 can be reached with it), and remembers verified executor
 * tokens for as long.
 */
export class AppKeys {
  private readonly cache = new Map<string, { secret: AppSecret; at: number }>();

  constructor(
    private readonly redis: () => Promise<RedisConnection>,
    private readonly keys: Keys,
  ) {}

  /** get: the app's key and registrar, or undefined for an unknown (or forgotten) app. `fresh` skips the cache. */
  async get(appId: string, fresh = false): Promise<AppSecret | undefined> {
    const now = Date.now();
    const cached = this.cache.get(appId);
    if (!fresh && cached && now - cached.at < KEY_CACHE_MS) return cached.secret;
    const [key, registrar] = await (await this.redis()).hmget(this.keys.appSecret(appId), 'key', 'registrar');
    if (!key) {
      this.cache.delete(appId);
      return undefined;
    }
    const secret = { key, registrar: registrar ?? '' };
    if (this.cache.size >= KEY_CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(appId, { secret, at: now });
    return secret;
  }

  /** cached: the key if it is in the cache (the heartbeat path avoids a round trip with it). */
  cached(appId: string): AppSecret | undefined {
    const entry = this.cache.get(appId);
    return entry && Date.now() - entry.at < KEY_CACHE_MS ? entry.secret : undefined;
  }

  private readonly verified = new Map<string, { subject: string; at: number }>();

  /** verifiedExecutor: what an executor token was verified for, within the key cache's lifetime. */
  verifiedExecutor(token: string): string | undefined {
    const entry = this.verified.get(token);
    return entry && Date.now() - entry.at < KEY_CACHE_MS ? entry.subject : undefined;
  }

  rememberExecutor(token: string, subject: string): void {
    if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.clear();
    this.verified.set(token, { subject, at: Date.now() });
  }
}

export type Access = { ok: true; owner: boolean } | ({ ok: false } & Refusal);

/**
 * decideAppAccess: may `credential` act on `appId`? The owner (the app's own token)
 * always may; a cluster token may when it grants one of `scopes`; nobody else.
 */
export async function decideAppAccess(credential: Credential, appId: string, scopes: readonly Scope[], appKeys: AppKeys): Promise<Access> {
  const alternatives = scopes.length ? ` or a cluster token with the ${scopes.map((s) => `'${s}'`).join(' or ')} scope` : '';
  switch (credential.kind) {
    case 'none':
      return { ok: false, status: 401, message: `Missing bearer token: this request needs the application's token (returned when it was registered)${alternatives}.` };
    case 'executor':
      return { ok: false, status: 403, message: "An executor's token only sends that executor's heartbeats." };
    case 'app': {
      const secret = await appKeys.get(appId);
      if (!secret) return { ok: false, status: 404, message: `unknown application '${appId}'` };
      if (isAppToken(credential.token, secret.key, appId)) return { ok: true, owner: true };
      return { ok: false, status: 403, message: `The token belongs to another application, not to ${appId}.` };
    }
    case 'cluster':
      if (scopes.some((scope) => hasScope(credential.claims, scope))) return { ok: true, owner: false };
      return {
        ok: false,
        status: 403,
        message: `This request needs the application's own token${alternatives}; the token grants: ${credential.claims.scope || 'nothing'}.`,
      };
  }
}

/** isOwnerOrAdmin: for reads, which show `env` and secret-looking values only to these. */
export async function isOwnerOrAdmin(credential: Credential, appId: string, appKeys: AppKeys): Promise<{ full: boolean; owner: boolean }> {
  if (credential.kind === 'cluster') return { full: hasScope(credential.claims, 'admin'), owner: false };
  if (credential.kind !== 'app') return { full: false, owner: false };
  const secret = await appKeys.get(appId);
  const owner = secret !== undefined && isAppToken(credential.token, secret.key, appId);
  return { full: owner, owner };
}

/**
 * isExecutorCredential: `credential` is executor `execId` of `appId`'s token (the key from
 * the cache or Redis). A token once verified is remembered with what it was verified for
 * (the heartbeat path then costs a map lookup, not an HMAC); `appKeys.forget` drops it
 * with its app's key.
 */
export async function isExecutorCredential(credential: Credential, appId: string, execId: number, appKeys: AppKeys): Promise<boolean> {
  if (credential.kind !== 'executor') return false;
  const subject = `${appId}/${execId}`;
  if (appKeys.verifiedExecutor(credential.token) === subject) return true;
  const secret = appKeys.cached(appId) ?? (await appKeys.get(appId));
  if (secret === undefined || !isExecutorToken(credential.token, secret.key, appId, execId)) return false;
  appKeys.rememberExecutor(credential.token, subject);
  return true;
}

// ---------------------------------------------------------------- redaction

/** REDACTED: Spark's replacement text for redacted values. */
export const REDACTED = '*********(redacted)';

/** SECRET_LOOKING: Spark's spark.redaction.regex default, plus credential and private key. */
const SECRET_LOOKING = /secret|password|token|access[._-]?key|credential|private[._-]?key/i;

/** SECRET_ASSIGNMENT: a `name=value` inside a longer text whose name looks secret (`jdbc:x?user=a&password=b`). */
const SECRET_ASSIGNMENT = /(secret|password|token|access[._-]?key|credential|private[._-]?key)[^=\s&;]*=/i;

/**
 * redactDescription: an application description as anyone but its owner (or an
 * admin) sees it: every `env` value, and, as Spark's redaction does, every value whose
 * name or text looks secret (conf, labels), every `--name=value` or `name=value` argument
 * whose name looks secret, the argument after a secret-looking flag (`--password x`), and an
 * argument holding a secret-looking assignment (a URL's `password=`), replaced by REDACTED.
 * Example: command ['run', '--db-password=hunter2', '--token', 't'] →
 * ['run', '--db-password=*********(redacted)', '--token', '*********(redacted)'].
 */
export function redactDescription(desc: unknown): unknown {
  if (desc === null || typeof desc !== 'object' || Array.isArray(desc)) return desc;
  const out: Record<string, unknown> = { ...(desc as Record<string, unknown>) };
  const map = (value: unknown, all: boolean) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, all || SECRET_LOOKING.test(k) || (typeof v === 'string' && SECRET_ASSIGNMENT.test(v)) ? REDACTED : v]),
    );
  };
  if ('env' in out) out.env = map(out.env, true);
  if ('conf' in out) out.conf = map(out.conf, false);
  if ('labels' in out) out.labels = map(out.labels, false);
  if (Array.isArray(out.command)) {
    const args = out.command as unknown[];
    out.command = args.map((arg, i) => {
      if (typeof arg !== 'string') return arg;
      const eq = arg.indexOf('=');
      if (eq > 0 && SECRET_LOOKING.test(arg.slice(0, eq))) return `${arg.slice(0, eq + 1)}${REDACTED}`;
      const previous = args[i - 1];
      if (typeof previous === 'string' && previous.startsWith('-') && !previous.includes('=') && SECRET_LOOKING.test(previous)) return REDACTED;
      return SECRET_ASSIGNMENT.test(arg) ? REDACTED : arg;
    });
  }
  return out;
}
