/**
 * renderProgressBar: one line, `[#####.....] 5/10 label`, redrawn in place on a
 * terminal and printed at most once per step change otherwise (CI logs stay short).
 */
export function renderProgressBar(done: number, total: number, label = '', width = 30): string {
  const clamped = Math.max(0, Math.min(done, total));
  const filled = total > 0 ? Math.round((clamped / total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${clamped}/${total}${label ? ' ' + label : ''}`;
}

export class ProgressLine {
  private last = '';
  constructor(
    private readonly write: (text: string) => void,
    private readonly isTty: boolean,
  ) {}

  update(done: number, total: number, label = ''): void {
    const line = renderProgressBar(done, total, label);
    if (line === this.last) return;
    this.last = line;
    this.write(this.isTty ? `\r${line}` : `${line}\n`);
  }

  finish(): void {
    if (this.isTty && this.last) this.write('\n');
  }
}
