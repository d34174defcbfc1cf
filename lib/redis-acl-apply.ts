/**
 * Putting the role users of lib/redis-acl.ts in place: generating their passwords,
 * keeping each in an owner-only file, writing an aclfile, and applying them to a
 * running Redis (ACL SETUSER with the password's SHA-256, then ACL SAVE when the
 * server has an aclfile). `flint acl` and `flint up` use it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { aclFileLine, type AclUser } from './redis-acl.ts';
import { readPasswordFile } from './redis-credentials.ts';

/** generatePassword: 256 random bits, URL-safe. */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** UserCredential: a user, its password, and the file that holds the password. */
export interface UserCredential {
  user: AclUser;
  password: string;
  passwordFile: string;
}

/** passwordFileName: the file name of a user's password (user names may hold '/' or ':'). */
export function passwordFileName(userName: string): string {
  return `${encodeURIComponent(userName)}.password`;
}

/**
 * writeCredentials keeps each user's password in `<dir>/<user>.password` (mode 0600, the
 * directory 0700). An existing password file is kept (re-running does not rotate)
 * unless `rotate`. Files are written beside and renamed, so a reader never sees half.
 */
export async function writeCredentials(dir: string, users: readonly AclUser[], options: { rotate?: boolean } = {}): Promise<UserCredential[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const out: UserCredential[] = [];
  for (const user of users) {
    const passwordFile = join(dir, passwordFileName(user.name));
    let password: string | undefined;
    if (!options.rotate) {
      try {
        password = readPasswordFile(passwordFile);
      } catch (error) {
        if ((error as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw error;
      }
    }
    if (password === undefined) {
      password = generatePassword();
      const partial = `${passwordFile}.partial`;
      await writeFile(partial, `${password}\n`, { mode: 0o600 });
      await chmod(partial, 0o600);
      await rename(partial, passwordFile);
    }
    out.push({ user, password, passwordFile });
  }
  return out;
}

/** aclFileText: every user as aclfile lines (passwords as SHA-256 only). */
export function aclFileText(credentials: readonly UserCredential[]): string {
  return credentials.map(({ user, password }) => aclFileLine(user, sha256Hex(password))).join('\n') + '\n';
}

/**
 * mergeAclFile writes `path` with the given users' lines, keeping the lines of any
 * other user already in it (e.g. `default`, or other clusters' users). Mode 0600.
 */
export async function mergeAclFile(path: string, credentials: readonly UserCredential[]): Promise<void> {
  let existing = '';
  try {
    existing = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const names = new Set(credentials.map((c) => c.user.name));
  const kept = existing.split('\n').filter((line) => line.trim() && !names.has(line.trim().split(/\s+/)[1] ?? ''));
  const partial = `${path}.partial`;
  await writeFile(partial, [...kept, aclFileText(credentials).trimEnd()].join('\n') + '\n', { mode: 0o600 });
  await rename(partial, path);
}

/**
 * applyAclUsers creates or replaces each user on one Redis server (ACL SETUSER ...
 * #<sha256>), then saves them when the server has an aclfile. Returns whether they
 * were saved (false: they last until the server restarts).
 */
export async function applyAclUsers(redis: Redis, credentials: readonly UserCredential[]): Promise<{ saved: boolean }> {
  for (const { user, password } of credentials) {
    await redis.call('ACL', 'SETUSER', user.name, ...user.rules, `#${sha256Hex(password)}`);
  }
  return { saved: await saveAcl(redis) };
}

/** deleteAclUsers removes users (missing ones are not an error), then saves when the server has an aclfile. */
export async function deleteAclUsers(redis: Redis, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await redis.call('ACL', 'DELUSER', ...names);
  await saveAcl(redis);
}

/** saveAcl: ACL SAVE when the server was started with an aclfile; false when it has none. */
async function saveAcl(redis: Redis): Promise<boolean> {
  try {
    await redis.call('ACL', 'SAVE');
    return true;
  } catch (error) {
    // "There is no ACL file to save": users set at run time only (e.g. a server configured with requirepass)
    if (/no ACL file|ACL file/i.test((error as Error).message)) return false;
    throw error;
  }
}
