/**
 * A comparable description of a folder on the host: what an extraction
 * produced, and what a real tool (debugfs rdump, mcopy, bsdtar) produced.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export interface ManifestEntry {
  type: "file" | "dir" | "symlink" | "other";
  mode: number;
  uid: number;
  gid: number;
  size: number | null;
  /** sha256 of a file, target of a symlink. */
  content: string | null;
  mtime: number;
  /** Inode on the host, to see hard links. */
  ino: number;
  nlink: number;
}

export function manifest(root: string): Map<string, ManifestEntry> {
  const out = new Map<string, ManifestEntry>();
  const visit = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path);
      const type = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "other";
      out.set(relPath, {
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: type === "dir" ? null : st.size,
        content:
          type === "file"
            ? createHash("sha256").update(readFileSync(path)).digest("hex")
            : type === "symlink"
              ? readlinkSync(path)
              : null,
        mtime: Math.floor(st.mtimeMs / 1000),
        ino: st.ino,
        nlink: st.nlink,
      });
      if (type === "dir") visit(path, relPath);
    }
  };
  visit(root, "");
  return out;
}

/** Keep only the named fields, for assert.deepEqual with readable diffs. */
export function project(m: Map<string, ManifestEntry>, fields: Array<keyof ManifestEntry>, skip: (path: string, e: ManifestEntry) => boolean = () => false): Record<string, Partial<ManifestEntry>> {
  const out: Record<string, Partial<ManifestEntry>> = {};
  for (const [path, e] of m) {
    if (skip(path, e)) continue;
    const p: Partial<ManifestEntry> = {};
    for (const f of fields) (p as Record<string, unknown>)[f] = e[f];
    out[path] = p;
  }
  return out;
}
