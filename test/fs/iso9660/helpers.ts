/**
 * Shared by the ISO tests: the fixture tree and reference ISOs, and the
 * listings we compare (ours through the FileSystem interface, bsdtar's).
 */
import { statSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { FileSystem, FsNode } from "../../../src/fs/types.js";
import { fixture, FIXTURE_OUT } from "../../helpers/fixtures.js";
import { run } from "../../helpers/run.js";

/** The test tree (test/fixtures/make-tree.sh), built once. */
export function testTree(): Promise<string> {
  return fixture("make-tree.sh", "iso-tree");
}

/** An ISO of the test tree made by a real tool, rebuilt when the tree is newer. */
export async function referenceIso(tool: "xorriso" | "genisoimage"): Promise<string> {
  const tree = await testTree();
  const out = join(FIXTURE_OUT, `iso-tree-${tool}.iso`);
  try {
    if (statSync(out).mtimeMs < statSync(`${tree}.manifest`).mtimeMs) rmSync(out);
  } catch {
    // not built yet
  }
  return fixture("make-iso.sh", `iso-tree-${tool}.iso`, [tool, tree]);
}

export interface Entry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  target?: string;
  id?: number | string | null;
}

/** Every entry below the root, depth first, as the reader sees it. */
export async function walk<N extends FsNode>(fs: FileSystem<N>, dir?: N, prefix = ""): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of fs.list(dir ?? (await fs.root()))) {
    const path = `${prefix}${e.name}`;
    const s = e.node.stat;
    out.push({
      path,
      type: s.type,
      mode: s.mode,
      uid: s.uid,
      gid: s.gid,
      size: s.size,
      mtime: s.mtime,
      id: s.id,
      ...(s.type === "symlink" ? { target: await fs.readlink(e.node) } : {}),
    });
    if (s.type === "dir") out.push(...(await walk(fs, e.node, `${path}/`)));
  }
  return out;
}

/** mtree quotes bytes outside printable ASCII as \ooo. */
function unquoteMtree(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const m = /^\\([0-7]{3})/.exec(text.slice(i));
    if (m) {
      bytes.push(Number.parseInt(m[1], 8));
      i += 3;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * bsdtar's listing of an image (libarchive's reader, what `bsdtar -tv` shows)
 * in its exact form: bsdtar writing an mtree manifest of the archive.
 */
export async function bsdtarListing(image: string): Promise<Entry[]> {
  const r = await run("bsdtar", ["-cf", "-", "--format=mtree", "--options=!all,type,mode,uid,gid,size,time,link", `@${image}`]);
  if (r.code !== 0) throw new Error(`bsdtar failed: ${r.stderr}`);
  const entries: Entry[] = [];
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("./")) continue;
    const [rawPath, ...fields] = line.split(" ");
    const kv = Object.fromEntries(fields.map((f) => f.split("=", 2) as [string, string]));
    const type = ({ link: "symlink" } as Record<string, string>)[kv.type] ?? kv.type;
    entries.push({
      path: unquoteMtree(rawPath.slice(2)),
      type,
      mode: Number.parseInt(kv.mode, 8),
      uid: Number(kv.uid),
      gid: Number(kv.gid),
      size: type === "file" ? Number(kv.size ?? 0) : 0,
      mtime: Math.floor(Number(kv.time)),
      ...(kv.link !== undefined ? { target: unquoteMtree(kv.link) } : {}),
    });
  }
  return entries;
}

/** One comparable line per entry; sizes of symlinks and others are left out (tools differ on them). */
export function lines(entries: Entry[]): string[] {
  return entries
    .map((e) => {
      const size = e.type === "file" ? ` size=${e.size}` : "";
      const target = e.type === "symlink" ? ` -> ${e.target}` : "";
      return `${e.path} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} mtime=${e.mtime}${size}${target}`;
    })
    .sort();
}

/**
 * bsdtar lists the second name of a hard link with size 0: give it the size
 * of the first, which our reader shows for both (they share one extent).
 */
export function withHardLinkSizes(bsdtar: Entry[], ours: Entry[]): Entry[] {
  const byPath = new Map(ours.map((e) => [e.path, e]));
  return bsdtar.map((e) => {
    const mine = byPath.get(e.path);
    if (e.type !== "file" || e.size !== 0 || !mine || mine.size === 0 || mine.id === null) return e;
    const sharing = ours.filter((o) => o.id === mine.id && o.path !== e.path);
    return sharing.length > 0 ? { ...e, size: mine.size } : e;
  });
}
