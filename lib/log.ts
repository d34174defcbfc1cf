/**
 * Structured logs (pino). Every line carries the process role and, where it
 * applies, app, executor, driver and worker ids as fields, never only in text.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(role: string, fields: Record<string, unknown> = {}): Logger {
  return pino({
    name: `flint-${role}`,
    level: process.env.FLINT_LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'warn' : 'info'),
    base: { role, pid: process.pid, ...fields },
  });
}
