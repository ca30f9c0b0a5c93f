/**
 * ext2/ext3/ext4 (and jbd, an external journal) share one superblock at
 * 1024; which name blkid gives depends on the feature flags: a journal makes
 * ext3, a feature ext3 does not know makes ext4.
 */
import { extName } from "../ext/superblock.js";
import type { ProbeReader } from "./reader.js";
import { byteLabel, dceUuid } from "./text.js";
import type { ProbeResult } from "./types.js";

export async function probeExt(r: ProbeReader): Promise<ProbeResult | null> {
  const sb = await r.read(1024, 512);
  if (!sb || sb[56] !== 0x53 || sb[57] !== 0xef) return null;
  const flavour = extName(sb.readUInt32LE(92), sb.readUInt32LE(96), sb.readUInt32LE(100));
  if (!flavour) return null;
  return {
    filesystem: flavour,
    label: byteLabel(sb.subarray(120, 136)),
    uuid: dceUuid(sb.subarray(104, 120)),
    version: `${sb.readUInt32LE(76)}.${sb.readUInt16LE(62)}`,
  };
}
