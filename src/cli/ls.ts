import type { Command } from "commander";
import { escapeName, hasRawBytes, nameBytes, printableName } from "../fs/names.js";
import { resolvePath } from "../fs/path.js";
import type { FileSystem, FileType, FsNode, FsStat } from "../fs/types.js";
import { joinPath, sortedList, walk } from "../fs/walk.js";
import { openImageFilesystem } from "./image-fs.js";
import { JsonArrayWriter, StdoutWriter, warn } from "./output.js";

export interface LsOptions {
  part?: string;
  long?: boolean;
  recursive?: boolean;
  json?: boolean;
}

interface Listed {
  path: string;
  name: string;
  node: FsNode;
}

/** The `ls --json` shape of DESIGN.md. */
export interface LsJsonEntry {
  /** Printable: bytes that are not UTF-8 become U+FFFD; `pathBytes` then has them exactly. */
  path: string;
  name: string;
  /** Base64 of the exact bytes, only when they are not UTF-8. */
  pathBytes?: string;
  nameBytes?: string;
  type: FileType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  target?: string;
  targetBytes?: string;
  /** [major, minor] of a device. */
  rdev?: [number, number];
}

const JSON_HELP = `print [{"path","name","type","size","mode","uid","gid","nlink","mtime","target","rdev"}]; a name, path or target that is not UTF-8 also comes as base64 of its bytes in "nameBytes", "pathBytes", "targetBytes"`;

const TYPE_CHAR: Record<FileType, string> = { file: "-", dir: "d", symlink: "l", char: "c", block: "b", fifo: "p", socket: "s" };

/**
 * Rows of `ls -l` aligned together, as GNU ls aligns a whole folder. Past
 * this many, a listing is printed as it comes, batch by batch, and columns
 * only ever widen, never narrow (as GNU tar's listing does), so memory stays
 * bounded whatever the folder holds.
 */
const LONG_BATCH = 10_000;

/** "drwxr-xr-x", with s/S and t/T for setuid, setgid and sticky as ls shows them. */
export function modeString(stat: FsStat): string {
  const m = stat.mode;
  const bit = (mask: number, ch: string) => (m & mask ? ch : "-");
  const exec = (x: number, special: number, on: string, off: string) =>
    m & special ? (m & x ? on : off) : m & x ? "x" : "-";
  return (
    TYPE_CHAR[stat.type] +
    bit(0o400, "r") + bit(0o200, "w") + exec(0o100, 0o4000, "s", "S") +
    bit(0o040, "r") + bit(0o020, "w") + exec(0o010, 0o2000, "s", "S") +
    bit(0o004, "r") + bit(0o002, "w") + exec(0o001, 0o1000, "t", "T")
  );
}

/** "2023-11-14 22:13" in UTC. */
export function formatMtime(seconds: number): string {
  const d = new Date(Math.floor(seconds) * 1000);
  return Number.isNaN(d.getTime()) ? "?" : d.toISOString().slice(0, 16).replace("T", " ");
}

function isDevice(stat: FsStat): boolean {
  return stat.type === "char" || stat.type === "block";
}

/** The fields `nameBytes`/`pathBytes`/`targetBytes` of a name that is not UTF-8, else nothing. */
function exactBytes(key: "nameBytes" | "pathBytes" | "targetBytes", name: string): Partial<LsJsonEntry> {
  return hasRawBytes(name) ? { [key]: nameBytes(name).toString("base64") } : {};
}

function jsonEntry(e: Listed, target: string | undefined): LsJsonEntry {
  const s = e.node.stat;
  return {
    path: printableName(e.path),
    name: printableName(e.name),
    ...exactBytes("pathBytes", e.path),
    ...exactBytes("nameBytes", e.name),
    type: s.type,
    size: s.size,
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    nlink: s.nlink,
    mtime: Math.floor(s.mtime),
    ...(target === undefined ? {} : { target: printableName(target), ...exactBytes("targetBytes", target) }),
    ...(isDevice(s) && s.rdev ? { rdev: [s.rdev[0], s.rdev[1]] as [number, number] } : {}),
  };
}

interface LongRow {
  stat: FsStat;
  shown: string;
  target?: string;
}

/**
 * `ls -l` lines: mode, links, owner, group, size (a device's "major, minor"
 * instead, as GNU ls prints them, each number in its own right-aligned
 * column), mtime, name. Names and targets are escaped, so every column but
 * the last is ASCII and pads by its length. Widths are kept from one batch
 * to the next.
 */
export class LongFormat {
  private readonly widths = { nlink: 0, uid: 0, gid: 0, size: 0, major: 0, minor: 0 };

  *lines(batch: LongRow[]): Generator<string> {
    const widths = this.widths;
    const widen = (key: keyof typeof widths, value: number) => (widths[key] = Math.max(widths[key], String(value).length));
    for (const { stat } of batch) {
      widen("nlink", stat.nlink);
      widen("uid", stat.uid);
      widen("gid", stat.gid);
      if (!isDevice(stat)) widen("size", stat.size);
      else if (stat.rdev) {
        widen("major", stat.rdev[0]);
        widen("minor", stat.rdev[1]);
        widths.size = Math.max(widths.size, widths.major + 2 + widths.minor);
      }
    }
    for (const { stat, shown, target } of batch) {
      yield [
        modeString(stat),
        String(stat.nlink).padStart(widths.nlink),
        String(stat.uid).padStart(widths.uid),
        String(stat.gid).padStart(widths.gid),
        this.sizeCell(stat).padStart(widths.size),
        formatMtime(stat.mtime),
        target === undefined ? shown : `${shown} -> ${escapeName(target)}`,
      ].join("  ");
    }
  }

  private sizeCell(stat: FsStat): string {
    if (!isDevice(stat)) return String(stat.size);
    if (!stat.rdev) return "?";
    const [major, minor] = stat.rdev;
    return `${String(major).padStart(this.widths.size - 2 - this.widths.minor)}, ${String(minor).padStart(this.widths.minor)}`;
  }
}

/** What PATH lists, as it is read: sorted within the walk's budget, never collected whole. */
async function* listing(fs: FileSystem<FsNode>, path: string, opts: LsOptions): AsyncGenerator<Listed> {
  // Like GNU ls: a link named on the command line is listed as a link, except that without
  // -l a link to a folder (or a path ending in "/") lists the folder.
  let start = await resolvePath(fs, path, { followFinal: path.endsWith("/") });
  if (start.node.stat.type === "symlink" && !opts.long) {
    const target = await resolvePath(fs, path, { followFinal: true }).catch(() => undefined);
    if (target?.node.stat.type === "dir") start = target;
  }
  if (start.node.stat.type !== "dir") {
    yield { path: start.path, name: start.name, node: start.node };
  } else if (opts.recursive) {
    yield* walk(fs, start.node, start.path, { onWarning: warn });
  } else {
    for await (const e of sortedList(fs, start.node, start.path, { onWarning: warn })) {
      yield { path: joinPath(start.path, e.name), name: e.name, node: e.node };
    }
  }
}

/** Print the listing of PATH as `platter ls` does, line by line as it is read. */
export async function printListing(fs: FileSystem<FsNode>, path: string, opts: LsOptions, out = new StdoutWriter()): Promise<void> {
  try {
    await printEntries(fs, listing(fs, path, opts), opts, out);
  } finally {
    // What was read before a failure (a corrupt folder deep in -R) is printed, as GNU ls does.
    await out.flush().catch(() => {});
  }
}

async function printEntries(fs: FileSystem<FsNode>, entries: AsyncIterable<Listed>, opts: LsOptions, out: StdoutWriter): Promise<void> {
  const targetOf = async (e: Listed) => (e.node.stat.type === "symlink" ? await fs.readlink(e.node) : undefined);
  if (opts.json) {
    const array = new JsonArrayWriter(out);
    for await (const e of entries) await array.add(jsonEntry(e, await targetOf(e)));
    await array.end();
    return;
  }
  const shown = (e: Listed) => escapeName(opts.recursive ? e.path : e.name);
  if (!opts.long) {
    for await (const e of entries) await out.write(`${shown(e)}\n`);
    return;
  }
  const format = new LongFormat();
  let batch: LongRow[] = [];
  const printBatch = async () => {
    for (const line of format.lines(batch)) await out.write(`${line}\n`);
    batch = [];
  };
  for await (const e of entries) {
    batch.push({ stat: e.node.stat, shown: shown(e), target: await targetOf(e) });
    if (batch.length >= LONG_BATCH) await printBatch();
  }
  await printBatch();
}

export function registerLs(program: Command): Command {
  return program
    .command("ls")
    .description("list files inside a filesystem image (ext2/3/4, FAT, exFAT, squashfs, ISO 9660), without mounting it")
    .argument("<image>", "image file or block device")
    .argument("[path]", "folder or file inside the filesystem", "/")
    .option("--part <n>", "partition number (Linux numbering)")
    .option("-l, --long", "mode, links, owner, size (a device's major, minor), mtime (UTC)")
    .option("-R, --recursive", "everything below PATH, with full paths")
    .option("--json", JSON_HELP)
    .action(async (image: string, path: string, opts: LsOptions) => {
      const opened = await openImageFilesystem(image, opts.part);
      try {
        await printListing(opened.fs, path, opts);
      } finally {
        await opened.close();
      }
    });
}
