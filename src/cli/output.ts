/** Helpers every command uses to print: JSON to stdout and nothing else beside it. */
import { once } from "node:events";
import { writeStdout } from "./stdout.js";

export function printJson(value: unknown): void {
  writeStdout(`${JSON.stringify(value, null, 2)}\n`);
}

const WIDE = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]/u;
const ZERO_WIDTH = /[\u0300-\u036f\u200b-\u200f\ufe00-\ufe0f]/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Terminal columns a string takes: CJK and emoji take two, combining marks none. */
export function displayWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length;
  let width = 0;
  for (const ch of text) width += ZERO_WIDTH.test(ch) ? 0 : WIDE.test(ch) ? 2 : 1;
  return width;
}

function pad(cell: string, width: number, right: boolean): string {
  const fill = " ".repeat(Math.max(0, width - displayWidth(cell)));
  return right ? fill + cell : cell + fill;
}

/** Left-aligned text columns; `right` lists the columns to right-align (numbers). Partition and file names may be CJK. */
export function formatTable(rows: string[][], right: number[] = []): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, displayWidth(cell))));
  return rows
    .map((row) =>
      row
        .map((cell, i) => pad(cell, widths[i], right.includes(i)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A warning on stderr, in the one format all commands use. */
export function warn(message: string): void {
  process.stderr.write(`platter: warning: ${message}\n`);
}

/**
 * Text for stdout, handed on in large pieces and only as fast as stdout takes
 * it, so a listing of millions of lines is never held in memory (a pipe
 * to a slow reader would otherwise queue all of it).
 */
export class StdoutWriter {
  private pending: string[] = [];
  private size = 0;

  constructor(
    /** Default: stdout (writeStdout). */
    private readonly stream?: NodeJS.WritableStream,
    private readonly piece = 1 << 16,
  ) {}

  async write(text: string): Promise<void> {
    this.pending.push(text);
    this.size += text.length;
    if (this.size >= this.piece) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    this.size = 0;
    if (this.stream) {
      if (!this.stream.write(text)) await once(this.stream, "drain");
    } else if (!writeStdout(text)) {
      await once(process.stdout, "drain");
    }
  }
}

/** A JSON array printed one element at a time, exactly as printJson would print the whole array. */
export class JsonArrayWriter {
  private count = 0;

  constructor(private readonly out: StdoutWriter) {}

  add(value: unknown): Promise<void> {
    const element = JSON.stringify(value, null, 2).replace(/\n/g, "\n  ");
    return this.out.write(`${this.count++ === 0 ? "[\n" : ",\n"}  ${element}`);
  }

  end(): Promise<void> {
    return this.out.write(this.count === 0 ? "[]\n" : "\n]\n");
  }
}
