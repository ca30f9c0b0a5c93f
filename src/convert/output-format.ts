/**
 * Which format convert (and capture) writes: `--to NAME` when given (a
 * format's name, "zstd", or its extension, "zst"), else DEST's extension,
 * else raw. Never a guess from the source.
 */
import { UsageError } from "../errors.js";
import type { ContainerWriter } from "../container/format.js";
import { CONTAINER_WRITERS } from "../container/registry.js";

/** The raw format, or a container writer. */
export type OutputFormat = { name: "raw" } | ContainerWriter;

function names(writer: ContainerWriter): string[] {
  return [writer.name, ...writer.extensions.map((e) => e.replace(/^\./, ""))];
}

export function knownOutputNames(): string[] {
  return ["raw", ...CONTAINER_WRITERS.flatMap(names)];
}

export function chooseOutputFormat(dest: string, to?: string): OutputFormat {
  if (to !== undefined) {
    const wanted = to.toLowerCase();
    if (wanted === "raw" || wanted === "img") return { name: "raw" };
    const writer = CONTAINER_WRITERS.find((w) => names(w).includes(wanted));
    if (!writer) throw new UsageError(`--to ${to}: unknown output format (platter writes: ${knownOutputNames().join(", ")})`);
    return writer;
  }
  const lower = dest.toLowerCase();
  const byExtension = CONTAINER_WRITERS.find((w) => w.extensions.some((e) => lower.endsWith(e)));
  return byExtension ?? { name: "raw" };
}
