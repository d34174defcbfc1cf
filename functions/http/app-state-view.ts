/**
 * appStateFromHash: how GET /v1/apps/:id shows an application: its Redis records
 * (protocol/records.ts describes them) as JSON, with its executors' heartbeats.
 */

const NUMERIC_APP_FIELDS = new Set([
  'coresGranted',
  'requestedCores',
  'executorLimit',
  'liveExecutors',
  'retryCount',
  'nextExecutorId',
  'startTime',
  'endTime',
  'seq',
  'priority',
]);

/** HIDDEN_APP_FIELDS: bookkeeping that is not the app's state (the clientId is the registration's idempotency key). */
const HIDDEN_APP_FIELDS = new Set(['clientId', 'hbTimeoutMs', 'hbCheckMs']);

/**
 * appStateFromHash: the app hash (strings) → JSON for GET /v1/apps/:id: numbers
 * as numbers, `desc` and `heartbeat` parsed, executors parsed and ordered by id, each
 * with its last heartbeat (`lastHeartbeat`, ms) and latest metrics when it sends them.
 */
export function appStateFromHash(
  hash: Record<string, string>,
  executors: Record<string, string> = {},
  receiver: { beats?: string[]; metrics?: Record<string, string> } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (HIDDEN_APP_FIELDS.has(field)) continue;
    if (NUMERIC_APP_FIELDS.has(field)) {
      const n = Number(value);
      out[field] = Number.isFinite(n) ? n : value;
    } else if (field === 'desc' || field === 'heartbeat') {
      out[field] = parseJsonOr(value);
    } else {
      out[field] = value;
    }
  }
  const lastBeat = new Map<string, number>();
  const beats = receiver.beats ?? [];
  for (let i = 0; i + 1 < beats.length; i += 2) lastBeat.set(beats[i]!, Number(beats[i + 1]));
  out.executors = Object.entries(executors)
    .map(([id, raw]) => {
      const parsed = parseJsonOr(raw);
      const executor: Record<string, unknown> = parsed !== null && typeof parsed === 'object' ? { id: Number(id), ...(parsed as object) } : { id: Number(id), raw };
      if (lastBeat.has(id)) executor.lastHeartbeat = lastBeat.get(id);
      const metrics = receiver.metrics?.[id];
      if (metrics !== undefined) executor.latestMetrics = parseJsonOr(metrics);
      return executor as { id: number } & Record<string, unknown>;
    })
    .sort((a, b) => a.id - b.id);
  return out;
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

