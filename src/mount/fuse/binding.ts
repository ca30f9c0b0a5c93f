/**
 * The FUSE binding, loaded only when a FUSE mount is asked for: fuse-native
 * is an optional dependency (a native addon linked against libfuse 2), and
 * everything else in platter works without it.
 */
import { accessSync, constants, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { UnsupportedError } from "../../errors.js";

/** What fuse-native takes for getattr: numbers in its own units (times in ms). */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** fuse-native's callbacks: the first argument is 0 or a negative errno (for read: the byte count). */
type Done<T> = (err: number, value?: T) => void;

export interface FuseOps {
  init(cb: (err: number) => void): void;
  getattr(path: string, cb: Done<FuseStat>): void;
  readdir(path: string, cb: Done<string[]>): void;
  readlink(path: string, cb: Done<string>): void;
  open(path: string, flags: number, cb: Done<number>): void;
  read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
  statfs(path: string, cb: Done<FuseStatfs>): void;
}

export interface FuseMountOptions {
  fsname: string;
  subtype: string;
  timeout: false;
  kernelCache: boolean;
  attrTimeout: number;
  entryTimeout: number;
}

export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
}

export interface FuseBinding {
  new (mountPoint: string, ops: FuseOps, options: FuseMountOptions): FuseInstance;
}

const PACKAGE = "fuse-native";

const INSTALL_HINT =
  `FUSE mounts need the optional npm package ${PACKAGE} (npm install ${PACKAGE}; it links libfuse 2: apt-get install libfuse2) ` +
  "and /dev/fuse (apt-get install fuse3)";

export async function loadFuseBinding(): Promise<FuseBinding> {
  let loaded: { default: FuseBinding };
  try {
    // A variable specifier: the package has no types and may be absent.
    const name: string = PACKAGE;
    loaded = (await import(name)) as { default: FuseBinding };
  } catch (err) {
    throw new UnsupportedError(`${INSTALL_HINT}; loading it failed: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
  if (process.getuid?.() !== 0) provideFusermount();
  return loaded.default;
}

/** The path of `tool` on PATH, as execvp finds it. */
function findOnPath(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const path = join(dir || ".", tool);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Without root, libfuse 2 mounts through the setuid helper `fusermount`; a
 * system with only FUSE 3 has `fusermount3`, which speaks the same protocol.
 * libfuse looks the helper up on PATH, so a private link to it is enough.
 */
function provideFusermount(): void {
  const fusermount3 = findOnPath("fusermount3");
  if (findOnPath("fusermount") || !fusermount3) return;
  const dir = mkdtempSync(join(tmpdir(), "platter-fusermount-"));
  symlinkSync(fusermount3, join(dir, "fusermount"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  process.env.PATH = `${dir}${delimiter}${process.env.PATH ?? ""}`;
}
