/**
 * What unsquashfs shows, rebuilt from platter's squashfs reader: `-lln`
 * lines (normalised) and sha256 lines of every regular file.
 */
import { createHash } from "node:crypto";
import type { SquashfsFileSystem, SquashfsNode } from "../../../src/fs/squashfs/index.js";

const TYPE_CHAR: Record<SquashfsNode["kind"], string> = {
  dir: "d",
  file: "-",
  symlink: "l",
  blockdev: "b",
  chardev: "c",
  fifo: "p",
  socket: "s",
};

/** `ls -l` permissions, with s/S for setuid/setgid and t/T for sticky, as unsquashfs prints them. */
export function modeString(kind: SquashfsNode["kind"], mode: number): string {
  const rwx = (bits: number, special: boolean, letter: string) =>
    `${bits & 4 ? "r" : "-"}${bits & 2 ? "w" : "-"}${special ? (bits & 1 ? letter : letter.toUpperCase()) : bits & 1 ? "x" : "-"}`;
  return (
    TYPE_CHAR[kind] +
    rwx(mode >> 6, (mode & 0o4000) !== 0, "s") +
    rwx(mode >> 3, (mode & 0o2000) !== 0, "s") +
    rwx(mode, (mode & 0o1000) !== 0, "t")
  );
}

function utcMinute(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
}

/** One `unsquashfs -lln` line with the column padding squeezed out (paths may hold spaces, so only the head is touched). */
export function normaliseLln(line: string): string {
  const m = /^(\S+) (\S+)\s+(\d+,\s*\d+|\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$/.exec(line);
  if (!m) throw new Error(`unexpected unsquashfs line: ${line}`);
  return `${m[1]} ${m[2]} ${(m[3] as string).replace(/\s+/g, "")} ${m[4]} ${m[5]}`;
}

export async function llnLines(fs: SquashfsFileSystem): Promise<string[]> {
  const lines: string[] = [];
  const line = async (node: SquashfsNode, path: string) => {
    const s = node.stat;
    const size = s.rdev ? s.rdev.join(",") : String(s.size);
    const target = node.kind === "symlink" ? ` -> ${await fs.readlink(node)}` : "";
    lines.push(`${modeString(node.kind, s.mode)} ${s.uid}/${s.gid} ${size} ${utcMinute(s.mtime)} ${path}${target}`);
  };
  const walk = async (dir: SquashfsNode, path: string) => {
    for await (const { name, node } of fs.list(dir)) {
      await line(node, `${path}/${name}`);
      if (node.kind === "dir") await walk(node, `${path}/${name}`);
    }
  };
  const root = await fs.root();
  await line(root, "squashfs-root");
  await walk(root, "squashfs-root");
  return lines;
}

/** `sha256sum` lines (`HASH  ./path`) of every regular file, in path order, read in 1 MiB pieces. */
export async function sha256Lines(fs: SquashfsFileSystem): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (dir: SquashfsNode, path: string) => {
    for await (const { name, node } of fs.list(dir)) {
      if (node.kind === "dir") await walk(node, `${path}/${name}`);
      if (node.kind !== "file") continue;
      const hash = createHash("sha256");
      for (let at = 0; at < node.stat.size; at += 1 << 20) {
        hash.update(await fs.read(node, at, Math.min(1 << 20, node.stat.size - at)));
      }
      lines.push(`${hash.digest("hex")}  ${path}/${name}`);
    }
  };
  await walk(await fs.root(), ".");
  return lines.sort((a, b) => Buffer.compare(Buffer.from(a.slice(66)), Buffer.from(b.slice(66))));
}
