/** Helpers every command uses to print: JSON to stdout and nothing else beside it. */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned text columns; `right` lists the columns to right-align (numbers). */
export function formatTable(rows: string[][], right: number[] = []): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A warning on stderr, in the one format all commands use. */
export function warn(message: string): void {
  process.stderr.write(`platter: warning: ${message}\n`);
}
