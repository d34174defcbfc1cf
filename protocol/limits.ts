/**
 * Limits on what a submitter controls: an application or driver description is
 * written to Redis once (the app or driver hash) and copied into every LaunchExecutor
 * of its executors, so its size is what one tenant can make Redis hold. Every side
 * checks them through the schemas of messages.ts (the HTTP servers, the clients, the
 * master's message validation), so a description over a limit is refused with the
 * field named, before anything is stored. docs/security.md lists them.
 *
 * Worked example: at most MAX_DESCRIPTION_BYTES (64 KiB) per description, and a worker
 * with 32 cores holds at most 32 unread LaunchExecutor entries (each executor takes at
 * least one core until it ends, and entries are deleted once acknowledged), so one
 * worker's inbox holds at most about 2 MiB of descriptions at any time.
 */

/**
 * groupDigits writes an integer with comma thousands separators (65,536), as
 * toLocaleString('en-US') would. Not toLocaleString itself: its first call loads ICU's
 * locale data, about 8 MB of RSS that an idle master or agent then keeps
 * (docs/packaging.md), and messages.ts formats its limits while it loads.
 */
export function groupDigits(value: number): string {
  const digits = String(Math.trunc(Math.abs(value)));
  return `${value < 0 ? '-' : ''}${digits.replace(/\B(?=(\d{3})+$)/g, ',')}`;
}

/** MAX_DESCRIPTION_BYTES: the whole description as JSON (UTF-8). */
export const MAX_DESCRIPTION_BYTES = 64 * 1024;
/** command: arguments, and bytes of each. */
export const MAX_COMMAND_ARGS = 1000;
export const MAX_ARG_BYTES = 16 * 1024;
/** env: variables, name length, value bytes. */
export const MAX_ENV_VARS = 500;
export const MAX_ENV_NAME_LENGTH = 256;
export const MAX_ENV_VALUE_BYTES = 16 * 1024;
/** labels: entries, key length, value length. */
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_LENGTH = 128;
export const MAX_LABEL_VALUE_LENGTH = 1024;
/** custom resources (GPUs, FPGAs, ...): entries, name length, amount. */
export const MAX_RESOURCES = 16;
export const MAX_RESOURCE_NAME_LENGTH = 64;
export const MAX_RESOURCE_AMOUNT = 1_000_000;
/** a driver's Spark properties: entries, key length, value bytes. */
export const MAX_PROPERTIES = 500;
export const MAX_PROPERTY_KEY_LENGTH = 256;
export const MAX_PROPERTY_VALUE_BYTES = 16 * 1024;
/** short strings: user, app UI URL, appResource, mainClass. */
export const MAX_SHORT_TEXT = 1024;
export const MAX_URL_LENGTH = 4096;
/** HTTP_BODY_LIMIT_BYTES: request bodies of the REST server and the application HTTP API (above MAX_DESCRIPTION_BYTES, so an oversized field is named rather than cut off as a too-large body). */
export const HTTP_BODY_LIMIT_BYTES = 2 * 1024 * 1024;

/** DEAD_LETTER_RAW_BYTES: how much of a rejected message's body the dead-letter stream keeps (enough to see what it was). */
export const DEAD_LETTER_RAW_BYTES = 4096;
/** DEAD_LETTERS_RETAINED: entries the dead-letter stream keeps (approximately: MAXLEN ~). */
export const DEAD_LETTERS_RETAINED = 1000;

/** utf8Bytes: the UTF-8 size of a string. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * oversizedDescription: undefined when `description` fits MAX_DESCRIPTION_BYTES as JSON;
 * else the field that takes the most of it and a message saying both sizes.
 */
export function oversizedDescription(description: Record<string, unknown>): { field: string; message: string } | undefined {
  const total = utf8Bytes(JSON.stringify(description));
  if (total <= MAX_DESCRIPTION_BYTES) return undefined;
  let field = '';
  let largest = -1;
  for (const [name, value] of Object.entries(description)) {
    const size = value === undefined ? 0 : utf8Bytes(JSON.stringify(value));
    if (size > largest) {
      largest = size;
      field = name;
    }
  }
  return {
    field,
    message: `the description is ${groupDigits(total)} bytes as JSON, more than the limit of ${groupDigits(MAX_DESCRIPTION_BYTES)}; ${field} takes ${groupDigits(largest)}`,
  };
}
