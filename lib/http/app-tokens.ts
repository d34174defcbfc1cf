/**
 * Tokens bound to one application (docs/security.md, "Application and executor tokens").
 *
 * Registering an application creates a random key for it (`newAppKey`), kept in the
 * cluster's Redis under `secret:app:<id>` (keys.appSecret) and nowhere else. Two
 * kinds of token derive from it:
 *
 *   fa1.<base64url HMAC-SHA256(key, "owner\n" + appId)>
 *       the application's own token, returned by POST /v1/apps: it reads, renews,
 *       resizes, kills and unregisters that application and no other;
 *   fe1.<hex HMAC-SHA1(key, "executor\n" + appId + "/" + execId)>
 *       one executor's heartbeat token: it sends that executor's heartbeats and
 *       nothing else. The master's commit computes it (commit-placements.lua; Redis's
 *       Lua has SHA-1 only) and puts it in the executor's LaunchExecutor, so a worker
 *       agent never holds an application key and needs no cluster secret.
 *
 * Both are deterministic, so a registration retried with the same Idempotency-Key
 * gets the same token, and both die with the application's keys (no expiry to manage).
 * Verification reads the key from Redis and compares in constant time.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const APP_TOKEN_PREFIX = 'fa1.';
export const EXECUTOR_TOKEN_PREFIX = 'fe1.';

export type TokenKind = 'app' | 'executor' | 'jwt';

/** newAppKey: 32 random bytes in hex, an application's key. */
export function newAppKey(): string {
  return randomBytes(32).toString('hex');
}

/** appToken: the application's own token. */
export function appToken(key: string, appId: string): string {
  return APP_TOKEN_PREFIX + createHmac('sha256', Buffer.from(key, 'utf8')).update(`owner\n${appId}`).digest('base64url');
}

/** executorToken: executor `execId`'s heartbeat token (the same text commit-placements.lua computes). */
export function executorToken(key: string, appId: string, execId: number): string {
  return EXECUTOR_TOKEN_PREFIX + createHmac('sha1', Buffer.from(key, 'utf8')).update(`executor\n${appId}/${execId}`).digest('hex');
}

/** tokenKind: which kind of bearer token this is, by its prefix (JWTs start with their base64url header). */
export function tokenKind(token: string): TokenKind {
  if (token.startsWith(APP_TOKEN_PREFIX)) return 'app';
  if (token.startsWith(EXECUTOR_TOKEN_PREFIX)) return 'executor';
  return 'jwt';
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** isAppToken: `token` is `appId`'s own token under `key` (constant time). */
export function isAppToken(token: string, key: string, appId: string): boolean {
  return sameText(token, appToken(key, appId));
}

/** isExecutorToken: `token` is executor `execId` of `appId`'s heartbeat token under `key` (constant time). */
export function isExecutorToken(token: string, key: string, appId: string, execId: number): boolean {
  return sameText(token, executorToken(key, appId, execId));
}

/**
 * credentialHash: SHA-256 (hex) of a bearer credential, recorded as the registrar of
 * an application so a retried registration returns the app's token only to the
 * caller that made the first one.
 */
export function credentialHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
