/**
 * A folder on the host described by the exact bytes of its names (as Latin-1
 * strings, one character per byte), for comparing extractions of names that
 * are not UTF-8 byte for byte; node's string paths would turn them to U+FFFD.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface RawEntry {
  type: "file" | "dir" | "symlink" | "fifo" | "socket" | "char" | "block";
  mode: number;
  /** sha256 of a file; the target bytes (Latin-1) of a symlink; "major,minor" of a device. */
  content: string | null;
}

const SLASH = Buffer.from("/");

/** Bytes of a name or path written as a Latin-1 string ("bad\xff\xfe.txt"). */
export const bytes = (latin1: string): Buffer => Buffer.from(latin1, "latin1");

export function rawTree(root: string): Map<string, RawEntry> {
  const out = new Map<string, RawEntry>();
  const visit = (dir: Buffer, rel: string) => {
    const names = readdirSync(dir, { encoding: "buffer" }).sort(Buffer.compare);
    for (const name of names) {
      const path = Buffer.concat([dir, SLASH, name]);
      const relPath = rel ? `${rel}/${name.toString("latin1")}` : name.toString("latin1");
      const st = lstatSync(path);
      const type: RawEntry["type"] = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFIFO() ? "fifo" : st.isSocket() ? "socket" : st.isCharacterDevice() ? "char" : "block";
      const content =
        type === "file"
          ? createHash("sha256").update(readFileSync(path)).digest("hex")
          : type === "symlink"
            ? readlinkSync(path, { encoding: "buffer" }).toString("latin1")
            : type === "char" || type === "block"
              ? `${Math.floor(st.rdev / 256) & 0xfff},${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`
              : null;
      out.set(relPath, { type, mode: st.mode & 0o7777, content });
      if (type === "dir") visit(path, relPath);
    }
  };
  visit(Buffer.from(root), "");
  return out;
}
