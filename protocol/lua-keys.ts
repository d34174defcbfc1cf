/**
 * luaKeyTable: protocol/keys.ts rendered as a Lua table `K` built on the runtime
 * namespace NS, so TypeScript and every Lua script (the master's commit scripts and
 * the application client's receiver scripts) spell each key the same way.
 */
import { clusterKeys } from './keys.ts';

const NON_KEYS = new Set(['cluster', 'bullPrefix', 'masterQueue']);
const MARK = '\u0001';

/** luaKeyTable renders protocol/keys.ts as a Lua table `K` built on the runtime namespace NS. */
export function luaKeyTable(): string {
  const probe = 'probe-cluster';
  const keys = clusterKeys(probe) as Record<string, unknown>;
  const ns = `flint{${probe}}`;
  const toLua = (text: string): string => {
    if (!text.startsWith(ns)) throw new Error(`key '${text}' does not start with the namespace`);
    const parts = text.slice(ns.length).split(MARK);
    const pieces = ['NS'];
    parts.forEach((part, index) => {
      if (part) pieces.push(JSON.stringify(part));
      if (index < parts.length - 1) pieces.push('a');
    });
    return pieces.join(' .. ');
  };
  const lines = ['local K = {}'];
  for (const [name, value] of Object.entries(keys)) {
    if (NON_KEYS.has(name)) continue;
    if (typeof value === 'string') lines.push(`K.${name} = ${toLua(value)}`);
    else if (typeof value === 'function') lines.push(`K.${name} = function(a) return ${toLua((value as (a: string) => string)(MARK))} end`);
  }
  return lines.join('\n');
}

