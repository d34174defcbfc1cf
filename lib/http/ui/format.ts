/**
 * Formatting helpers of the master and worker UIs, as Spark's UIUtils and Utils
 * print the same quantities (memory in MiB/GiB, durations, dates).
 */

/** megabytesToString: Spark's Utils.megabytesToString ("512.0 MiB", "1024.0 MiB" → "1.0 GiB"). */
export function megabytesToString(megabytes: number): string {
  return bytesToString(megabytes * 1024 * 1024);
}

/** bytesToString: Spark's Utils.bytesToString (binary units, one decimal). */
export function bytesToString(size: number): string {
  const units: [number, string][] = [
    [2 ** 60, 'EiB'],
    [2 ** 50, 'PiB'],
    [2 ** 40, 'TiB'],
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [bytes, unit] of units) {
    if (size >= 2 * bytes) return `${(size / bytes).toFixed(1)} ${unit}`;
  }
  return `${size} B`;
}

/** formatDuration: Spark's UIUtils.formatDuration ("45 ms", "1.5 s", "3.2 min", "2.0 h"). */
export function formatDuration(ms: number): string {
  if (ms < 100) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = ms / 1000;
  if (seconds < 1) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  const minutes = seconds / 60;
  if (minutes < 10) return `${minutes.toFixed(1)} min`;
  if (minutes < 60) return `${minutes.toFixed(0)} min`;
  return `${(minutes / 60).toFixed(1)} h`;
}

/** formatDate: Spark's UIUtils.formatDate ("yyyy/MM/dd HH:mm:ss"), in UTC so every master shows the same text. */
export function formatDate(ms: number): string {
  if (!ms) return '';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** formatResources: "gpu: [0, 1], fpga: [3]" (Spark's formatResourcesAddresses). */
export function formatResources(resources: Record<string, string[]>): string {
  return Object.entries(resources)
    .map(([name, addresses]) => `${name}: [${addresses.join(', ')}]`)
    .join(', ');
}

/** formatResourceRequirements: "gpu: 2, fpga: 1". */
export function formatResourceRequirements(reqs: { name: string; amount: number }[]): string {
  return reqs.map((r) => `${r.name}: ${r.amount}`).join(', ');
}
