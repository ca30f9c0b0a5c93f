/**
 * Which format convert (and capture) writes: `--to NAME` when given (a
 * format's name, "zstd", or its extension, "zst"), else DEST's extension,
 * else raw. Never a guess from the source.
 */
import { UsageError } from "../errors.js";
import type { ContainerWriter } from "../container/format.js";
import { CONTAINER_WRITERS } from "../container/writers.js";

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

/** Writer options that only some formats take, by the flag that sets them. */
const FLAG_FORMATS: Record<string, { flag: string; formats: string[] }> = {
  compress: { flag: "--compress", formats: ["qcow2"] },
  vhdType: { flag: "--vhd-type", formats: ["vhd"] },
};

/** A flag the chosen format would silently ignore is a usage error: the user asked for something that will not happen. */
export function checkWriterFlags(format: OutputFormat, options: { level?: number; threads?: number; writerOptions?: Record<string, unknown> }): void {
  if (format.name === "raw" && (options.level !== undefined || options.threads !== undefined)) {
    throw new UsageError(`--level and --threads are for compressed output; ${options.level !== undefined ? "--level" : "--threads"} does nothing for a raw image`);
  }
  for (const [key, value] of Object.entries(options.writerOptions ?? {})) {
    const known = FLAG_FORMATS[key];
    if (value !== undefined && known && !known.formats.includes(format.name)) {
      throw new UsageError(`${known.flag} is for ${known.formats.join(", ")} output, not ${format.name}`);
    }
  }
}
