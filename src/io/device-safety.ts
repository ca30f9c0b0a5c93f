/**
 * Refuse a capture, convert or restore that would write over its own
 * source or over something in use, before anything is written:
 *  - DEST is SOURCE, under any path (same inode, same device number);
 *  - DEST and SOURCE overlap on disk: a partition and its disk, a device
 *    and the device-mapper or loop device built on it, a loop device and
 *    its backing file, a file and the device its file system lives on;
 *  - DEST is a block device that is mounted or used as swap (itself, one of
 *    its partitions, or a device built on it), holds the running system
 *    (/, /boot, /usr mounted from it), or is claimed by a device-mapper,
 *    LVM or md device even when nothing is mounted;
 *  - DEST is the backing file or device of a loop device (mounted or not, or
 *    under another loop device), found through /sys/block/loop*\/loop/backing_file.
 *
 * Linux only: devices are related through /sys/dev/block/MAJ:MIN (parent
 * disk, partitions, holders, slaves, loop/backing_file) and mounts come from
 * /proc/self/mountinfo. Where those are missing, only the inode check runs.
 *
 * Every look-up is synchronous: sysfs and procfs answer from memory, and a
 * walk of a few hundred of them through the thread pool cost tens of
 * milliseconds of each command's start (two thread switches per file).
 */
import { accessSync, constants, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { DeviceError, ioError, UsageError } from "../errors.js";
import { majorMinor } from "./block-device.js";

/** "file:DEV:INO" for files, "blk:MAJ:MIN" for block devices. */
type Key = string;

interface Node {
  /** Devices (and loop backing files) whose bytes this one is made of. */
  below: Key[];
  /** Devices made of this one's bytes (partitions, holders). */
  above: Key[];
  /** Device of each backing file in `below`. */
  fileDevices: Map<Key, string>;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function statKey(path: string): { key: Key; dev: string } | undefined {
  try {
    const st = statSync(path, { bigint: true });
    if (st.isBlockDevice()) return { key: `blk:${majorMinor(st.rdev)}`, dev: majorMinor(st.rdev) };
    return { key: `file:${st.dev}:${st.ino}`, dev: majorMinor(st.dev) };
  } catch {
    return undefined;
  }
}

/** What one check has read of the system: the loop devices, and each device's node once. */
interface SystemView {
  loops: Loop[];
  nodes: Map<string, Node>;
}

function systemView(): SystemView {
  return { loops: loopDevices(), nodes: new Map() };
}

/** Neighbours of a block device in the sysfs graph. */
function deviceNode(majMin: string, view: SystemView): Node {
  const known = view.nodes.get(majMin);
  if (known) return known;
  const node = readDeviceNode(majMin);
  view.nodes.set(majMin, node);
  return node;
}

function readDeviceNode(majMin: string): Node {
  const node: Node = { below: [], above: [], fileDevices: new Map() };
  let dir: string;
  try {
    dir = realpathSync(`/sys/dev/block/${majMin}`);
  } catch {
    return node;
  }
  const devOf = (sysDir: string) => {
    const d = readText(join(sysDir, "dev"));
    return d ? `blk:${d}` : undefined;
  };
  const push = (list: Key[], key: Key | undefined) => {
    if (key) list.push(key);
  };
  if (readText(join(dir, "partition")) !== undefined) push(node.below, devOf(dirname(dir)));
  // A partition's folder is named after its disk (sda1, nvme0n1p1).
  for (const name of listDir(dir).filter((n) => n.startsWith(basename(dir)))) {
    if (readText(join(dir, name, "partition")) !== undefined) push(node.above, devOf(join(dir, name)));
  }
  for (const name of listDir(join(dir, "slaves"))) push(node.below, devOf(`/sys/class/block/${name}`));
  for (const name of listDir(join(dir, "holders"))) push(node.above, devOf(`/sys/class/block/${name}`));
  const backing = readText(join(dir, "loop", "backing_file"));
  if (backing) {
    const b = statKey(backing.replace(/ \(deleted\)$/, ""));
    if (b) {
      node.below.push(b.key);
      node.fileDevices.set(b.key, b.dev);
    }
  }
  return node;
}

/** A loop device and what it reads: a file or another block device. */
interface Loop {
  key: Key;
  name: string;
  backing: Key;
}

/**
 * Every attached loop device and its backing file or device. The kernel
 * lists no holder for a loop device (it only names its backing file), so a
 * file or device a loop device is built on is found from the loop side.
 */
function loopDevices(): Loop[] {
  const loops: Loop[] = [];
  for (const name of listDir("/sys/block")) {
    const backing = readText(join("/sys/block", name, "loop", "backing_file"));
    const dev = readText(join("/sys/block", name, "dev"));
    if (!backing || !dev) continue;
    const b = statKey(backing.replace(/ \(deleted\)$/, ""));
    if (b) loops.push({ key: `blk:${dev}`, name: `/dev/${name}`, backing: b.key });
  }
  return loops;
}

/** Every key reachable from `start` by following only `below` (or only `above`) links. */
function closure(start: Key, direction: "below" | "above", fileDevices: Map<Key, string>, view: SystemView): Set<Key> {
  const seen = new Set<Key>([start]);
  const queue = [start];
  while (queue.length > 0 && seen.size < 256) {
    const key = queue.shift() as Key;
    let next: Key[] = [];
    if (key.startsWith("blk:")) {
      const node = deviceNode(key.slice(4), view);
      next = direction === "below" ? node.below : node.above;
      for (const [file, dev] of node.fileDevices) fileDevices.set(file, dev);
    } else if (direction === "below") {
      // A file's bytes live on the device of its file system.
      const dev = fileDevices.get(key);
      if (dev) next = [`blk:${dev}`];
    }
    if (direction === "above") next = [...next, ...view.loops.filter((l) => l.backing === key).map((l) => l.key)];
    for (const k of next) {
      if (!seen.has(k)) {
        seen.add(k);
        queue.push(k);
      }
    }
  }
  return seen;
}

interface Endpoint {
  key: Key;
  /** Keys this endpoint's bytes depend on, and keys built on them. */
  below: Set<Key>;
  above: Set<Key>;
  /** Loop devices built on it, directly or through others (a loop device on a loop device). */
  loops: Loop[];
}

function endpoint(path: string, view: SystemView): Endpoint | undefined {
  const fileDevices = new Map<Key, string>();
  let id = statKey(path);
  if (!id) {
    // A file to be created: it will live on its folder's file system.
    const parent = statKey(dirname(resolve(path)));
    if (!parent) return undefined;
    id = { key: `new:${resolve(path)}`, dev: parent.dev };
  }
  if (!id.key.startsWith("blk:")) fileDevices.set(id.key, id.dev);
  const below = closure(id.key, "below", fileDevices, view);
  const above = closure(id.key, "above", fileDevices, view);
  return { key: id.key, below, above, loops: view.loops.filter((l) => l.key !== id.key && above.has(l.key)) };
}

interface Mount {
  majMin: string;
  mountPoint: string;
  readOnly: boolean;
}

function mounts(): Mount[] {
  const text = (readText("/proc/self/mountinfo")) ?? "";
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    if (f.length < 6) continue;
    out.push({ majMin: f[2], mountPoint: f[4].replace(/\\040/g, " "), readOnly: f[5].split(",").includes("ro") });
  }
  return out;
}

function swapDevices(): Map<Key, string> {
  const out = new Map<Key, string>();
  const text = (readText("/proc/swaps")) ?? "";
  for (const line of text.split("\n").slice(1)) {
    const path = line.split(/\s+/)[0];
    if (!path) continue;
    const id = statKey(path);
    if (id?.key.startsWith("blk:")) out.set(id.key, path);
  }
  return out;
}

/** Mount points whose device holds the running system: writing it pulls the floor from under the machine. */
const SYSTEM_MOUNTS = new Set(["/", "/boot", "/boot/efi", "/usr"]);

/** Where a block device (or one built on it) is in use, or undefined. */
function inUse(device: Endpoint): string | undefined {
  const keys = new Set([...device.above]);
  const mounted = (mounts()).filter((m) => keys.has(`blk:${m.majMin}`));
  const system = mounted.find((m) => SYSTEM_MOUNTS.has(m.mountPoint));
  if (system) return `holding the running system (${system.mountPoint} is mounted from it)`;
  if (mounted.length > 0) return `mounted on ${mounted[0].mountPoint}`;
  for (const [key, path] of swapDevices()) {
    if (keys.has(key)) return `in use as swap (${path})`;
  }
  // A device-mapper, LVM or md device built on it claims it even when nothing is mounted (an active LV, a RAID member).
  for (const key of keys) {
    if (!key.startsWith("blk:")) continue;
    const holders = listDir(`/sys/dev/block/${key.slice(4)}/holders`);
    if (holders.length > 0) return `in use by /dev/${holders[0]} (a device-mapper, LVM or md device built on it)`;
  }
  return undefined;
}

function overlap(source: Endpoint, dest: Endpoint): boolean {
  return source.below.has(dest.key) || source.above.has(dest.key) || dest.below.has(source.key) || dest.above.has(source.key);
}

/**
 * Whether writing `destPath` writes the bytes of `sourcePath`: the same file
 * or device under any path ("same"), or one whose bytes share storage with
 * it ("overlap": a partition and its disk, a loop device and its backing
 * file, a file and the device of its file system).
 */
export async function sameOrOverlapping(sourcePath: string, destPath: string): Promise<"same" | "overlap" | undefined> {
  const view = systemView();
  const source = endpoint(sourcePath, view);
  const dest = endpoint(destPath, view);
  if (!source || !dest) return undefined;
  if (source.key === dest.key) return "same";
  return overlap(source, dest) ? "overlap" : undefined;
}

/**
 * Throw a UsageError if writing DEST could damage SOURCE or a mounted file
 * system. Returns warnings worth printing (SOURCE mounted read-write).
 */
export async function checkCaptureTargets(sourcePath: string, destPath: string): Promise<string[]> {
  const warnings: string[] = [];
  const view = systemView();
  const source = endpoint(sourcePath === "-" ? "/dev/stdin" : sourcePath, view);
  const dest = endpoint(destPath, view);
  if (!source || !dest) return warnings;
  if (source.key === dest.key) {
    throw new UsageError(`refusing to write to ${destPath}: it is the source ${sourcePath}`);
  }
  if (overlap(source, dest)) {
    const where = dest.below.has(source.key) && !dest.key.startsWith("blk:") ? "it is stored on" : "it overlaps";
    throw new UsageError(`refusing to write to ${destPath}: ${where} the source ${sourcePath}`);
  }
  const use = inUse(dest);
  // Writing under a loop device changes what it shows, mounted or not.
  const loop = dest.loops[0];
  if (loop) {
    const what = dest.key.startsWith("blk:") ? "device" : "file";
    throw new UsageError(`refusing to write to ${destPath}: it is the backing ${what} of ${loop.name}${use ? `, ${use}` : ""} (detach it first: losetup -d ${loop.name})`);
  }
  if (use && dest.key.startsWith("blk:")) throw new UsageError(`refusing to write to ${destPath}: it is ${use}`);
  if (source.key.startsWith("blk:")) {
    for (const m of mounts()) {
      if (source.above.has(`blk:${m.majMin}`) && !m.readOnly) {
        warnings.push(`${sourcePath} is mounted read-write on ${m.mountPoint}: the image may be inconsistent`);
        break;
      }
    }
  }
  return warnings;
}

/** A path a job will write, and what the user called it ("DEST", "--map", "of="). */
export interface NamedOutput {
  what: string;
  path: string;
}

/**
 * Check every path a job will write before the job starts, not hours into
 * it: its folder exists and can be written, it is not a folder itself, and
 * it is neither SOURCE nor another of the outputs (under any name: a
 * symlink, a hard link). SOURCE "-" is standard input.
 */
export async function checkOutputPaths(sourcePath: string | undefined, outputs: NamedOutput[]): Promise<void> {
  const source = sourcePath === undefined ? undefined : statKey(sourcePath === "-" ? "/dev/stdin" : sourcePath);
  const seen = new Map<Key, NamedOutput>();
  for (const output of outputs) {
    const key = writableKey(output);
    if (source && key === source.key) {
      throw new UsageError(`refusing to write ${output.what} ${output.path}: it is the source ${sourcePath}`);
    }
    const other = seen.get(key);
    if (other) throw new UsageError(`${other.what} and ${output.what} are the same file (${output.path})`);
    seen.set(key, output);
  }
}

/** The identity of an output path, once it is known that it can be written. */
function writableKey({ what, path }: NamedOutput): Key {
  const existing = statKey(path);
  if (existing) {
    if (statSync(path).isDirectory()) throw new UsageError(`${what} ${path}: is a directory`);
    writable(path, path);
    return existing.key;
  }
  // To be created: in a folder that exists and can be written.
  const folder = dirname(resolve(path));
  let st;
  try {
    st = statSync(folder);
  } catch (err) {
    throw ioError(err, path);
  }
  if (!st.isDirectory()) throw new DeviceError(`${path}: not a directory`, "ENOTDIR");
  writable(folder, path);
  return `new:${join(realpathSync(folder), basename(path))}`;
}

function writable(path: string, named: string): void {
  try {
    accessSync(path, constants.W_OK);
  } catch (err) {
    throw ioError(err, named);
  }
}
