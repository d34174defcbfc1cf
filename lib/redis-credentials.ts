/**
 * Redis credentials without putting them on a command line. A Flint process is given
 * a Redis URL without a password plus `spark.flint.redis.user` and
 * `spark.flint.redis.passwordFile` (a file readable by its owner only); it reads the
 * file once at start and keeps the URL with credentials in memory. So `ps` and
 * /proc/<pid>/cmdline never show a secret, and the URLs Flint prints go through
 * redactRedisUrl.
 *
 * The Redis infra/setup.sh runs (127.0.0.1:6379) requires a password that setup
 * generated into SETUP_REDIS_PASSWORD_FILE; a process given neither a password nor a
 * user for that Redis uses that file when it can read it.
 */
import { readFileSync, statSync } from 'node:fs';

/** SETUP_REDIS_PASSWORD_FILE: where infra/setup.sh keeps the password of its Redis's `default` user. */
export const SETUP_REDIS_PASSWORD_FILE = '/etc/flint/redis-password';

/** RedisCredentials: what configuration says about how to authenticate. */
export interface RedisCredentials {
  /** ACL user name (spark.flint.redis.user); unset = `default` */
  user?: string;
  /** file holding the password (spark.flint.redis.passwordFile) */
  passwordFile?: string;
}

/**
 * readPasswordFile reads a password file: the whole content, trailing newlines removed.
 * A file that anyone may read, a directory, or an empty file is refused with one line
 * naming the file (never its content).
 */
export function readPasswordFile(path: string): string {
  let mode: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new Error('not a regular file');
    mode = stat.mode;
  } catch (error) {
    throw new Error(`Redis password file ${path}: ${(error as Error).message}`, { cause: error });
  }
  if ((mode & 0o004) !== 0) throw new Error(`Redis password file ${path} is readable by every user (mode ${(mode & 0o777).toString(8)}): chmod 600 it`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`Redis password file ${path}: ${(error as Error).message}`, { cause: error });
  }
  const password = text.replace(/[\r\n]+$/, '');
  if (!password) throw new Error(`Redis password file ${path} is empty`);
  if (/[\r\n]/.test(password)) throw new Error(`Redis password file ${path} holds more than one line`);
  return password;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** splitAuthority: the URL's scheme, user info (may be empty) and the rest after it. */
function splitAuthority(url: string): { scheme: string; userInfo: string; rest: string } {
  const scheme = SCHEME.exec(url)?.[0];
  if (!scheme) throw new Error(`not a Redis URL (no scheme): use redis://host:port`);
  const after = url.slice(scheme.length);
  // the user info ends at the last '@' before the path (a password may hold an unencoded '@')
  const pathStart = after.search(/[/?#]/);
  const authority = pathStart < 0 ? after : after.slice(0, pathStart);
  const at = authority.lastIndexOf('@');
  return { scheme, userInfo: at < 0 ? '' : authority.slice(0, at), rest: at < 0 ? after : after.slice(at + 1) };
}

/** stripCredentials: the URL without user or password (what a child process may be given on its command line). */
export function stripCredentials(url: string): string {
  const { scheme, rest } = splitAuthority(url);
  return scheme + rest;
}

/** withCredentials: the URL with `user` (empty = default) and `password` as its user info, percent-encoded. */
export function withCredentials(url: string, user: string | undefined, password: string): string {
  const { scheme, rest } = splitAuthority(url);
  return `${scheme}${encodeURIComponent(user ?? '')}:${encodeURIComponent(password)}@${rest}`;
}

/** isSetupRedis: the URL names the Redis infra/setup.sh runs (loopback, port 6379, database 0 or none). */
export function isSetupRedis(url: string): boolean {
  return /^redis:\/\/(127\.0\.0\.1|localhost)(:6379)?\/?(0)?$/i.test(url);
}

/**
 * resolveRedisUrl: the URL a process connects with, credentials included (kept in
 * memory only). A password in the URL itself wins (it was given explicitly for this
 * connection); otherwise the password file's content, as `user` or the URL's user.
 * With neither, for the setup Redis, setup's password file is used when it exists and
 * this process may read it (`setupFile`, for tests).
 */
export function resolveRedisUrl(url: string, credentials: RedisCredentials = {}, setupFile: string = SETUP_REDIS_PASSWORD_FILE): string {
  const { userInfo } = splitAuthority(url);
  const colon = userInfo.indexOf(':');
  if (colon >= 0 && userInfo.slice(colon + 1) !== '') {
    // the URL's password, as spark.flint.redis.user when the URL names no user
    return credentials.user && colon === 0 ? withCredentials(url, credentials.user, decodeURIComponent(userInfo.slice(1))) : url;
  }
  if (credentials.passwordFile) return withCredentials(url, credentials.user ?? decodeUser(userInfo), readPasswordFile(credentials.passwordFile));
  if (credentials.user) throw new Error(`spark.flint.redis.user is '${credentials.user}' but no password is given: set spark.flint.redis.passwordFile`);
  if (!userInfo && isSetupRedis(url)) {
    let password: string | undefined;
    try {
      password = readPasswordFile(setupFile);
    } catch {
      // missing or unreadable: the setup Redis may not require a password (or says NOAUTH, with a hint)
    }
    if (password !== undefined) return withCredentials(url, undefined, password);
  }
  return url;
}

function decodeUser(userInfo: string): string | undefined {
  const user = userInfo.includes(':') ? userInfo.slice(0, userInfo.indexOf(':')) : userInfo;
  return user ? decodeURIComponent(user) : undefined;
}

/** credentialsFromConfig: spark.flint.redis.user and spark.flint.redis.passwordFile. */
export function credentialsFromConfig(config: { get<T>(key: string): T }): RedisCredentials {
  return { user: config.get<string | undefined>('spark.flint.redis.user'), passwordFile: config.get<string | undefined>('spark.flint.redis.passwordFile') };
}

/** AUTH_HINT: what a NOAUTH or WRONGPASS answer means for a Flint user. */
export const AUTH_HINT =
  'this Redis requires authentication: give the password in spark.flint.redis.passwordFile (a file only its owner may read) and the ACL user in spark.flint.redis.user; infra/setup.sh keeps its Redis password in ' +
  SETUP_REDIS_PASSWORD_FILE;

/** isAuthError: Redis refused the connection's credentials (or lack of them). */
export function isAuthError(error: unknown): boolean {
  return /NOAUTH|WRONGPASS|invalid username-password|Authentication required/i.test((error as Error)?.message ?? '');
}
