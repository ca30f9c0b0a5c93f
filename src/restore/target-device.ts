/**
 * What a restore TARGET is, and what a person should see before it is
 * overwritten: a block device's size, model, serial and current partitions
 * (from sysfs, and udev's database where it has one), a loop device's
 * backing file; or a regular file, existing or to be made.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { majorMinor } from "../io/block-device.js";

export type TargetKind = "block" | "file" | "new";

export interface TargetPartition {
  /** Kernel name: sda1, loop0p2, nvme0n1p3. */
  name: string;
  size: number;
}

export interface TargetDescription {
  path: string;
  kind: TargetKind;
  /** Bytes: a device's size, an existing file's length, 0 for a new file. */
  size: number;
  model?: string;
  serial?: string;
  /** A loop device's backing file. */
  backingFile?: string;
  partitions: TargetPartition[];
}

/** The kind of TARGET, refusing what restore never writes (a folder, a pipe, a character device). */
export async function targetKind(path: string): Promise<{ kind: TargetKind; size: number; rdev: bigint }> {
  let st;
  try {
    st = await fsp.stat(path, { bigint: true });
  } catch {
    return { kind: "new", size: 0, rdev: 0n };
  }
  if (st.isDirectory()) throw new UsageError(`${path}: is a directory; name a block device or an image file to write`);
  if (st.isBlockDevice()) return { kind: "block", size: 0, rdev: st.rdev };
  if (st.isFile()) return { kind: "file", size: Number(st.size), rdev: 0n };
  throw new UsageError(`${path}: is neither a block device nor a regular file; restore writes to one of those`);
}

/** TARGET as the confirmation shows it; `size` is the device's exact size, known to the caller that opened it. */
export async function describeTarget(path: string, size: number): Promise<TargetDescription> {
  const { kind, rdev } = await targetKind(path);
  const description: TargetDescription = { path, kind, size, partitions: [] };
  if (kind !== "block") return description;
  const majMin = majorMinor(rdev);
  let dir: string;
  try {
    dir = await fsp.realpath(`/sys/dev/block/${majMin}`);
  } catch {
    return description;
  }
  const udev = await udevProperties(majMin);
  const vendor = await readText(join(dir, "device", "vendor"));
  const model = udev.ID_MODEL?.replace(/_/g, " ") ?? (await readText(join(dir, "device", "model")));
  description.model = [vendor, model].filter(Boolean).join(" ") || undefined;
  description.serial = udev.ID_SERIAL_SHORT ?? (await readText(join(dir, "device", "serial"))) ?? (await readText(join(dir, "serial")));
  description.backingFile = await readText(join(dir, "loop", "backing_file"));
  for (const name of (await fsp.readdir(dir).catch(() => [] as string[])).sort(byNumber)) {
    if ((await readText(join(dir, name, "partition"))) === undefined) continue;
    const sectors = Number(await readText(join(dir, name, "size")));
    description.partitions.push({ name, size: Number.isSafeInteger(sectors) ? sectors * 512 : 0 });
  }
  return description;
}

/** sda2 before sda10. */
function byNumber(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await fsp.readFile(path, "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** udev's E: properties for the device, where udev runs. */
async function udevProperties(majMin: string): Promise<Record<string, string>> {
  const text = (await readText(`/run/udev/data/b${majMin}`)) ?? "";
  const props: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^E:([A-Z_]+)=(.*)$/.exec(line);
    if (m) props[m[1]] = m[2];
  }
  return props;
}
