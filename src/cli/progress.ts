/**
 * One self-overwriting status line on stderr. Shown when stderr is a
 * terminal, or when --progress asks for it; --quiet silences it. The
 * library never prints: it reports progress through callbacks, and commands
 * turn those into this line.
 */
import { formatDuration, formatSize } from "../util/units.js";

export interface ProgressFlags {
  progress?: boolean;
  quiet?: boolean;
}

const MIN_INTERVAL_MS = 250;

export class ProgressLine {
  readonly enabled: boolean;
  private last = 0;
  private width = 0;
  private readonly tty: boolean;

  constructor(flags: ProgressFlags, private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY);
    this.enabled = !flags.quiet && (Boolean(flags.progress) || this.tty);
  }

  /** Redraw at most a few times a second; `force` for the final state. */
  update(render: () => string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < MIN_INTERVAL_MS) return;
    this.last = now;
    const text = render();
    if (this.tty) {
      const pad = Math.max(0, this.width - text.length);
      this.stream.write(`\r${text}${" ".repeat(pad)}`);
      this.width = text.length;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** End the line so later output starts clean. */
  done(): void {
    if (this.enabled && this.tty && this.width > 0) this.stream.write("\n");
    this.width = 0;
  }
}

/** "412 MiB / 1 GiB (40%), 180 MiB/s, ETA 3 s"; "412 MiB, 180 MiB/s" for a stream, whose total is unknown. */
export function describeTransfer(done: number, total: number | undefined, startedAt: number): string {
  const seconds = (Date.now() - startedAt) / 1000;
  const rate = seconds > 0 ? done / seconds : 0;
  if (total === undefined) return `${formatSize(done)}, ${formatSize(Math.round(rate))}/s`;
  const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
  const eta = rate > 0 ? formatDuration((total - done) / rate) : "?";
  return `${formatSize(done)} / ${formatSize(total)} (${pct}%), ${formatSize(Math.round(rate))}/s, ETA ${eta}`;
}
