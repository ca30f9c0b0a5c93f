/** Btrfs (blkid: btrfs): superblock at 64 KiB. */
import type { ProbeReader } from "./reader.js";
import { byteLabel, dceUuid } from "./text.js";
import type { ProbeResult } from "./types.js";

export async function probeBtrfs(r: ProbeReader): Promise<ProbeResult | null> {
  const sb = await r.read(0x10000, 0x22b);
  if (!sb || sb.toString("latin1", 0x40, 0x48) !== "_BHRfS_M") return null;
  return { filesystem: "btrfs", label: byteLabel(sb.subarray(0x12b, 0x22b)), uuid: dceUuid(sb.subarray(0x20, 0x30)) };
}
