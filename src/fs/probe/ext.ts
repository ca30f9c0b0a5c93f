/**
 * ext2/ext3/ext4 (and jbd, an external journal) share one superblock at
 * 1024; which name blkid gives depends on the feature flags: a journal makes
 * ext3, a feature ext3 does not know makes ext4.
 */
import type { ProbeReader } from "./reader.js";
import { byteLabel, dceUuid } from "./text.js";
import type { ProbeResult } from "./types.js";

const COMPAT_HAS_JOURNAL = 0x0004;
const INCOMPAT_FILETYPE = 0x0002;
const INCOMPAT_RECOVER = 0x0004;
const INCOMPAT_JOURNAL_DEV = 0x0008;
const INCOMPAT_META_BG = 0x0010;
const RO_COMPAT_SPARSE_SUPER = 0x0001;
const RO_COMPAT_LARGE_FILE = 0x0002;
const RO_COMPAT_BTREE_DIR = 0x0004;

const RO_COMPAT_EXT2_EXT3 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;
const INCOMPAT_EXT2 = INCOMPAT_FILETYPE | INCOMPAT_META_BG;
const INCOMPAT_EXT3 = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;

/** blkid's name for an ext superblock's feature set, or null when none fits. */
export function extFlavour(compat: number, incompat: number, roCompat: number): string | null {
  if (incompat & INCOMPAT_JOURNAL_DEV) return "jbd";
  const journal = (compat & COMPAT_HAS_JOURNAL) !== 0;
  const beyondExt3 = (roCompat & ~RO_COMPAT_EXT2_EXT3) !== 0 || (incompat & ~INCOMPAT_EXT3) !== 0;
  if (beyondExt3) return "ext4";
  if (journal) return "ext3";
  if ((incompat & ~INCOMPAT_EXT2) === 0) return "ext2";
  return null; // needs recovery but has no journal: blkid names nothing
}

export async function probeExt(r: ProbeReader): Promise<ProbeResult | null> {
  const sb = await r.read(1024, 512);
  if (!sb || sb[56] !== 0x53 || sb[57] !== 0xef) return null;
  const flavour = extFlavour(sb.readUInt32LE(92), sb.readUInt32LE(96), sb.readUInt32LE(100));
  if (!flavour) return null;
  return {
    filesystem: flavour,
    label: byteLabel(sb.subarray(120, 136)),
    uuid: dceUuid(sb.subarray(104, 120)),
    version: `${sb.readUInt32LE(76)}.${sb.readUInt16LE(62)}`,
  };
}
