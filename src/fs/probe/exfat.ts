/**
 * exFAT (blkid: exfat). The label is a directory entry (type 0x83) in the
 * root directory, UTF-16LE; the UUID is the volume serial number.
 */
import type { ProbeReader } from "./reader.js";
import { serialUuid, utf16Label } from "./text.js";
import type { ProbeResult } from "./types.js";

const ENTRY = 32;
const ENTRY_END = 0x00;
const ENTRY_LABEL = 0x83;
const FIRST_CLUSTER = 2;
const LAST_CLUSTER = 0xffffff6;
/** Labels sit at the start of the root directory; do not walk a huge one. */
const MAX_ENTRIES = 4096;

export async function probeExfat(r: ProbeReader): Promise<ProbeResult | null> {
  const sb = await r.read(0, 512);
  if (!sb || sb.toString("latin1", 3, 11) !== "EXFAT   ") return null;
  if (sb[510] !== 0x55 || sb[511] !== 0xaa) return null;
  if (sb[0] !== 0xeb || sb[1] !== 0x76 || sb[2] !== 0x90) return null;
  if (sb.subarray(11, 64).some((b) => b !== 0)) return null;
  const fatOffset = sb.readUInt32LE(80);
  const fatLength = sb.readUInt32LE(84);
  const heapOffset = sb.readUInt32LE(88);
  const clusterCount = sb.readUInt32LE(92);
  const rootCluster = sb.readUInt32LE(96);
  const sectorShift = sb[108];
  const clusterShift = sb[109];
  const fats = sb[110];
  if (fats < 1 || fats > 2 || sectorShift < 9 || sectorShift > 12 || clusterShift > 25 - sectorShift) return null;
  if (fatOffset < 24 || fatOffset + fatLength * fats > heapOffset || rootCluster < 2 || rootCluster > clusterCount + 1) return null;
  const sectorSize = 2 ** sectorShift;
  const clusterSize = sectorSize * 2 ** clusterShift;
  const clusterOffset = (c: number) => (heapOffset + (c - FIRST_CLUSTER) * 2 ** clusterShift) * sectorSize;
  let label: string | null = null;
  let cluster = rootCluster;
  let offset = clusterOffset(cluster);
  for (let i = 0; i < MAX_ENTRIES; i++) {
    const entry = await r.read(offset, ENTRY);
    if (!entry || entry[0] === ENTRY_END) break;
    if (entry[0] === ENTRY_LABEL) {
      label = utf16Label(entry.subarray(2, 2 + Math.min(entry[1] * 2, 22)), false);
      break;
    }
    offset += ENTRY;
    if (offset % clusterSize === 0) {
      const next = await r.read(fatOffset * sectorSize + cluster * 4, 4);
      if (!next) break;
      cluster = next.readUInt32LE(0);
      if (cluster < FIRST_CLUSTER || cluster > LAST_CLUSTER) break;
      offset = clusterOffset(cluster);
    }
  }
  return {
    filesystem: "exfat",
    label,
    uuid: serialUuid(sb.subarray(100, 104)),
    version: `${sb[105]}.${sb[104]}`,
  };
}
