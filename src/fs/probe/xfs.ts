/** XFS (blkid: xfs): superblock at 0, big-endian. */
import type { ProbeReader } from "./reader.js";
import { byteLabel, dceUuid, isPowerOfTwo } from "./text.js";
import type { ProbeResult } from "./types.js";

export async function probeXfs(r: ProbeReader): Promise<ProbeResult | null> {
  const sb = await r.read(0, 512);
  if (!sb || sb.toString("latin1", 0, 4) !== "XFSB") return null;
  const blockSize = sb.readUInt32BE(4);
  const agCount = sb.readUInt32BE(88);
  const sectorSize = sb.readUInt16BE(102);
  const inodeSize = sb.readUInt16BE(104);
  const blockLog = sb[120];
  // A few of libblkid's xfs_verify_sb checks: enough to reject garbage behind the magic.
  if (!isPowerOfTwo(blockSize) || blockSize < 512 || blockSize > 65536 || 1 << blockLog !== blockSize) return null;
  if (!isPowerOfTwo(sectorSize) || sectorSize < 512 || sectorSize > 32768) return null;
  if (!isPowerOfTwo(inodeSize) || inodeSize < 256 || inodeSize > 2048 || agCount === 0) return null;
  return { filesystem: "xfs", label: byteLabel(sb.subarray(108, 120)), uuid: dceUuid(sb.subarray(32, 48)) };
}
