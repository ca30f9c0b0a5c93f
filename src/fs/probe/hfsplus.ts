/**
 * HFS+ and HFSX (blkid: hfsplus), also when wrapped in an HFS volume. The
 * label is the name of the root folder: the first key of the catalog
 * B-tree's first leaf node. The UUID is derived from the 64-bit Finder id
 * the way Apple does it (an MD5 name-based UUID), as libblkid does.
 */
import type { ProbeReader } from "./reader.js";
import { dceUuid, utf16Label } from "./text.js";
import type { ProbeResult } from "./types.js";

const HEADER_OFFSET = 1024;
const HFS_UUID_NAMESPACE = Buffer.from("b3e20f39f29211d697a4003065" + "43ecac", "hex");
const NODE_DESCRIPTOR = 14;
const LEAF_NODE = 0xff;
const ROOT_PARENT_ID = 1;
const CATALOG_FORK = 0x110;
/** A node descriptor and the largest catalog key: libblkid's lower bound for a leaf node. */
const MIN_NODE_SIZE = NODE_DESCRIPTOR + 8 + 510;

export async function hfsUuid(finderId: Buffer): Promise<string | null> {
  if (finderId.every((b) => b === 0)) return null;
  // node:crypto costs start-up time; only an HFS+ volume needs it.
  const { createHash } = await import("node:crypto");
  const md5 = createHash("md5").update(HFS_UUID_NAMESPACE).update(finderId).digest();
  md5[6] = 0x30 | (md5[6] & 0x0f);
  md5[8] = 0x80 | (md5[8] & 0x3f);
  return dceUuid(md5);
}

/** Where the HFS+ volume header is: at 1024, or inside an HFS wrapper ("BD" with an embedded H+). */
function volumeStart(mdb: Buffer): number | null {
  const sig = mdb.toString("latin1", 0, 2);
  if (sig === "H+" || sig === "HX") return 0;
  if (sig !== "BD") return null;
  const embedded = mdb.toString("latin1", 0x7c, 0x7e);
  if (embedded !== "H+" && embedded !== "HX") return null;
  const allocBlockSize = mdb.readUInt32BE(0x14);
  const allocFirstBlock = mdb.readUInt16BE(0x1c);
  const embedStart = mdb.readUInt16BE(0x7e);
  return allocFirstBlock * 512 + embedStart * allocBlockSize;
}

export async function probeHfsplus(r: ProbeReader): Promise<ProbeResult | null> {
  const mdb = await r.read(HEADER_OFFSET, 512);
  if (!mdb) return null;
  const base = volumeStart(mdb);
  if (base === null) return null;
  const vh = await r.read(base + HEADER_OFFSET, 512);
  if (!vh) return null;
  const sig = vh.toString("latin1", 0, 2);
  if (sig !== "H+" && sig !== "HX") return null;
  const uuid = await hfsUuid(vh.subarray(0x68, 0x70));
  const blockSize = vh.readUInt32BE(0x28);
  if (blockSize < 512) return null;
  const result: ProbeResult = { filesystem: "hfsplus", label: null, uuid };
  result.label = await catalogRootName(r, vh, base, blockSize);
  return result;
}

async function catalogRootName(r: ProbeReader, vh: Buffer, base: number, blockSize: number): Promise<string | null> {
  const extents: Array<[number, number]> = [];
  for (let i = 0; i < 8; i++) {
    const at = CATALOG_FORK + 16 + i * 8;
    extents.push([vh.readUInt32BE(at), vh.readUInt32BE(at + 4)]);
  }
  const header = await r.read(base + extents[0][0] * blockSize, 512);
  if (!header) return null;
  const leafHead = header.readUInt32BE(NODE_DESCRIPTOR + 10);
  const nodeSize = header.readUInt16BE(NODE_DESCRIPTOR + 18);
  const leafCount = header.readUInt32BE(NODE_DESCRIPTOR + 6);
  if (nodeSize < MIN_NODE_SIZE || leafCount === 0) return null;
  let block = Math.floor((leafHead * nodeSize) / blockSize);
  let start: number | undefined;
  for (const [extentStart, count] of extents) {
    if (count === 0) return null;
    if (block < count) {
      start = extentStart;
      break;
    }
    block -= count;
  }
  if (start === undefined) return null;
  const node = await r.read(base + (start + block) * blockSize, MIN_NODE_SIZE);
  if (!node || node.readUInt16BE(10) === 0 || node[8] !== LEAF_NODE) return null;
  const key = NODE_DESCRIPTOR;
  const nameLength = node.readUInt16BE(key + 6);
  if (node.readUInt32BE(key + 2) !== ROOT_PARENT_ID || nameLength > 255) return null;
  return utf16Label(node.subarray(key + 8, key + 8 + nameLength * 2), true);
}
