/**
 * Test environment: where the real services every integration test talks to live.
 * Override with environment variables to point a test run at other instances.
 */

/** REDIS_URL: the Redis tests use (FLINT_TEST_REDIS_URL, default the local one infra/setup.sh starts). */
export const REDIS_URL = process.env.FLINT_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** DOCKER_SOCKET: the Docker engine tests use (FLINT_TEST_DOCKER_SOCKET, default /var/run/docker.sock). */
export const DOCKER_SOCKET = process.env.FLINT_TEST_DOCKER_SOCKET || '/var/run/docker.sock';

/** TEST_IMAGE: the local image containers in tests run (built offline by infra/setup.sh; never pulled). */
export const TEST_IMAGE = process.env.FLINT_TEST_IMAGE || 'flint-test-busybox:latest';
