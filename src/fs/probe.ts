/**
 * What filesystem is on this partition (or image)? Answers with blkid's
 * names, labels and UUIDs, reading only the few blocks each format needs.
 * The probers run in libblkid's order, so that where two signatures are
 * present (a UDF bridge disc is also ISO 9660) the answer is blkid's.
 *
 * The probers in probe/ do not validate with the readers' superblock codecs
 * (fs/fat/boot-sector.ts, fs/ext/superblock.ts...) on purpose: a probe
 * answers "would blkid call this vfat?" with libblkid's lenient acceptance
 * rules and returns null, while a reader validates as the kernel does and
 * throws a CorruptImageError naming the bad field. The two disagree at the
 * edges, and each must keep its own rules. Where a rule is the same (which
 * ext feature set blkid calls ext2, ext3 or ext4), both call one function.
 */
import type { BlockSource } from "../io/block-source.js";
import { probeBtrfs } from "./probe/btrfs.js";
import { probeExfat } from "./probe/exfat.js";
import { probeExt } from "./probe/ext.js";
import { probeHfsplus } from "./probe/hfsplus.js";
import { probeIso9660 } from "./probe/iso9660.js";
import { probeLuks } from "./probe/luks.js";
import { probeNtfs } from "./probe/ntfs.js";
import { ProbeReader } from "./probe/reader.js";
import { probeSquashfs } from "./probe/squashfs.js";
import { probeSwap } from "./probe/swap.js";
import type { Prober, ProbeResult } from "./probe/types.js";
import { probeUdf } from "./probe/udf.js";
import { probeVfat } from "./probe/vfat.js";
import { probeXfs } from "./probe/xfs.js";

export type { ProbeResult } from "./probe/types.js";
export { ProbeReader } from "./probe/reader.js";

/** libblkid's order (superblocks.c), restricted to the formats platter knows. */
const PROBERS: Prober[] = [
  probeLuks,
  probeVfat,
  probeSwap,
  probeXfs,
  probeExt,
  probeUdf,
  probeIso9660,
  probeHfsplus,
  probeNtfs,
  probeSquashfs,
  probeBtrfs,
  probeExfat,
];

/** libblkid ignores anything this small (an extended partition's 1-sector stub). */
const MIN_PROBE_SIZE = 1024;

/** Probe through an existing reader (to count or share what was read). */
export async function probeWith(reader: ProbeReader): Promise<ProbeResult | null> {
  if (reader.size <= MIN_PROBE_SIZE) return null;
  for (const probe of PROBERS) {
    const found = await probe(reader);
    if (found) return found;
  }
  return null;
}

export async function probeFilesystem(source: BlockSource): Promise<ProbeResult | null> {
  return probeWith(new ProbeReader(source));
}
