/**
 * Test environment: where the real services every integration test talks to live.
 * Override with environment variables to point a test run at other instances.
 *
 * The Redis infra/setup.sh runs requires a password once setup has configured it
 * (docs/security.md); the tests then authenticate with setup's password file, and
 * connect without a password as long as that file does not exist.
 */
import { existsSync } from 'node:fs';
import { readPasswordFile, SETUP_REDIS_PASSWORD_FILE, withCredentials } from '../../lib/redis-credentials.ts';
import { envNameFor } from '../../protocol/config.ts';

/** REDIS_PASSWORD_FILE: the test Redis's password file (FLINT_TEST_REDIS_PASSWORD_FILE, default setup's), if it exists. */
export const REDIS_PASSWORD_FILE: string | undefined = [process.env.FLINT_TEST_REDIS_PASSWORD_FILE || SETUP_REDIS_PASSWORD_FILE].find((file) => existsSync(file));

/**
 * REDIS_ARGV_URL: the test Redis (FLINT_TEST_REDIS_URL, default the local one infra/setup.sh
 * starts) without credentials: what tests put on a `flint` command line. The child finds
 * the password through its file (spark.flint.redis.passwordFile, set in the environment
 * below, or setup's file for the default URL), never through its arguments.
 */
export const REDIS_ARGV_URL = process.env.FLINT_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** REDIS_URL: the test Redis with credentials when it has a password file (for in-process connections only). */
export const REDIS_URL = REDIS_PASSWORD_FILE ? withCredentials(REDIS_ARGV_URL, undefined, readPasswordFile(REDIS_PASSWORD_FILE)) : REDIS_ARGV_URL;

// `flint` processes the tests start inherit the password file through their environment
if (REDIS_PASSWORD_FILE) process.env[envNameFor('spark.flint.redis.passwordFile')] ??= REDIS_PASSWORD_FILE;

/** DOCKER_SOCKET: the Docker engine tests use (FLINT_TEST_DOCKER_SOCKET, default /var/run/docker.sock). */
export const DOCKER_SOCKET = process.env.FLINT_TEST_DOCKER_SOCKET || '/var/run/docker.sock';

/** TEST_IMAGE: the local image containers in tests run (built offline by infra/setup.sh; never pulled). */
export const TEST_IMAGE = process.env.FLINT_TEST_IMAGE || 'flint-test-busybox:latest';
