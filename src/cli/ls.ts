import type { Command } from "commander";
import { resolvePath } from "../fs/path.js";
import type { FileSystem, FileType, FsNode, FsStat } from "../fs/types.js";
import { joinPath, sortedList, walk } from "../fs/walk.js";
import { openImageFilesystem } from "./image-fs.js";
import { formatTable, printJson, warn } from "./output.js";

interface LsOptions {
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
  path: string;
  name: string;
  type: FileType;
  size: number;
  mode: number;
  mtime: number;
  target?: string;
}

const TYPE_CHAR: Record<FileType, string> = { file: "-", dir: "d", symlink: "l", char: "c", block: "b", fifo: "p", socket: "s" };

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

async function collect(fs: FileSystem<FsNode>, path: string, opts: LsOptions): Promise<Listed[]> {
  // Like GNU ls: a link named on the command line is listed as a link, except that without
  // -l a link to a folder (or a path ending in "/") lists the folder.
  let start = await resolvePath(fs, path, { followFinal: path.endsWith("/") });
  if (start.node.stat.type === "symlink" && !opts.long) {
    const target = await resolvePath(fs, path, { followFinal: true }).catch(() => undefined);
    if (target?.node.stat.type === "dir") start = target;
  }
  if (start.node.stat.type !== "dir") return [{ path: start.path, name: start.name, node: start.node }];
  if (opts.recursive) {
    const out: Listed[] = [];
    for await (const e of walk(fs, start.node, start.path, { onWarning: warn })) out.push(e);
    return out;
  }
  const out: Listed[] = [];
  for await (const e of sortedList(fs, start.node, start.path, { onWarning: warn })) {
    out.push({ path: joinPath(start.path, e.name), name: e.name, node: e.node });
  }
  return out;
}

export function registerLs(program: Command): Command {
  return program
    .command("ls")
    .description("list files inside a filesystem image (ext2/3/4, FAT, exFAT, squashfs, ISO 9660), without mounting it")
    .argument("<image>", "image file or block device")
    .argument("[path]", "folder or file inside the filesystem", "/")
    .option("--part <n>", "partition number (Linux numbering)")
    .option("-l, --long", "mode, links, owner, size, mtime (UTC)")
    .option("-R, --recursive", "everything below PATH, with full paths")
    .option("--json", 'print [{"path","name","type","size","mode","mtime","target"}]')
    .action(async (image: string, path: string, opts: LsOptions) => {
      const opened = await openImageFilesystem(image, opts.part);
      try {
        const { fs } = opened;
        const entries = await collect(fs, path, opts);
        const targets = new Map<Listed, string>();
        for (const e of entries) if (e.node.stat.type === "symlink") targets.set(e, await fs.readlink(e.node));
        if (opts.json) {
          printJson(
            entries.map((e): LsJsonEntry => {
              const s = e.node.stat;
              const j: LsJsonEntry = { path: e.path, name: e.name, type: s.type, size: s.size, mode: s.mode, mtime: Math.floor(s.mtime) };
              if (targets.has(e)) j.target = targets.get(e);
              return j;
            }),
          );
          return;
        }
        const shown = (e: Listed) => (opts.recursive ? e.path : e.name);
        if (!opts.long) {
          if (entries.length) process.stdout.write(`${entries.map(shown).join("\n")}\n`);
          return;
        }
        const rows = entries.map((e) => {
          const s = e.node.stat;
          const target = targets.get(e);
          return [
            modeString(s),
            String(s.nlink),
            String(s.uid),
            String(s.gid),
            String(s.size),
            formatMtime(s.mtime),
            target === undefined ? shown(e) : `${shown(e)} -> ${target}`,
          ];
        });
        if (rows.length) process.stdout.write(`${formatTable(rows, [1, 2, 3, 4])}\n`);
      } finally {
        await opened.close();
      }
    });
}
