/**
 * UDF (blkid: udf). Found by its volume recognition sequence (an NSR02/NSR03
 * descriptor at 32 KiB, after BEA01, possibly after an ISO 9660 "CD001" on a
 * bridge disc), then the anchor at block 256 tells the block size and where
 * the volume descriptors are: the logical volume id is the label, the first
 * 16 characters of the volume set id make the UUID.
 */
import type { ProbeReader } from "./reader.js";
import type { ProbeResult } from "./types.js";

const VRS_OFFSET = 0x8000;
const TAG_PVD = 1;
const TAG_AVDP = 2;
const TAG_LVD = 6;
const TAG_TD = 8;
const TAG_LVID = 9;
const MAX_VDS = 64;
const KNOWN_VSD = new Set(["BEA01", "BOOT2", "CD001", "CDW02", "TEA01"]);
const OSTA_CHARSET = "OSTA Compressed Unicode";

/** An OSTA CS0 dstring (d-characters with a compression id, length in the last byte) as text. */
function dstring(field: Buffer): string | null {
  let len = field[field.length - 1];
  if (len > 0) len--;
  len = Math.min(len, field.length - 2);
  const cid = field[0];
  const chars = field.subarray(1, 1 + len);
  if (cid === 8) return chars.toString("latin1");
  if (cid === 16) return Buffer.from(chars.subarray(0, chars.length & ~1)).swap16().toString("utf16le");
  return null;
}

function cleanLabel(text: string | null): string | null {
  if (text === null) return null;
  const nul = text.indexOf("\0");
  const out = (nul === -1 ? text : text.slice(0, nul)).replace(/[ \t\n\v\f\r]+$/, "");
  return out.length ? out : null;
}

function isOstaCharset(charspec: Buffer): boolean {
  return charspec[0] === 0 && charspec.toString("latin1", 1, 1 + OSTA_CHARSET.length) === OSTA_CHARSET;
}

/** libblkid's UUID from the volume set id: 16 hex digits, or hex of the bytes when they are not hex. */
function volsetUuid(field: Buffer): string | null {
  const text = dstring(field);
  if (text === null) return null;
  const bytes = Buffer.from(text, "utf8").subarray(0, 16);
  if (bytes.length < 8) return null;
  const isHex = (b: number | undefined) => b !== undefined && /[0-9a-fA-F]/.test(String.fromCharCode(b));
  let nonHex = 16;
  for (let i = 0; i < 16; i++) {
    if (!isHex(bytes[i])) {
      nonHex = i;
      break;
    }
  }
  const hex = (from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString("hex");
  const lower = (from: number, to: number) => bytes.toString("latin1", from, to).toLowerCase();
  if (nonHex < 8) return hex(0, 8).padEnd(16, "0").slice(0, 16);
  if (nonHex < 16) return lower(0, 8) + Buffer.from([0, 1, 2, 3].map((i) => bytes[8 + i] ?? 0)).toString("hex");
  return lower(0, 16);
}

async function findVrs(r: ProbeReader, vsdLength: number): Promise<boolean> {
  for (let b = 0; b < 64; b++) {
    const vsd = await r.read(VRS_OFFSET + b * vsdLength, 7);
    if (!vsd || vsd[1] === 0) return false;
    const id = vsd.toString("latin1", 1, 6);
    if (id === "NSR02" || id === "NSR03") return true;
    if (!KNOWN_VSD.has(id)) return false;
  }
  return false;
}

async function anchorBlockSize(r: ProbeReader, candidates: number[]): Promise<{ bs: number; avdp: Buffer } | null> {
  let vrs2048: boolean | undefined;
  for (const bs of candidates) {
    const vsdLength = Math.max(bs, 2048);
    let found: boolean;
    if (vsdLength === 2048) {
      vrs2048 ??= await findVrs(r, 2048);
      found = vrs2048;
    } else {
      found = await findVrs(r, vsdLength);
    }
    if (!found) continue;
    for (const lba of [256, 512]) {
      const avdp = await r.read(lba * bs, 512);
      if (avdp && avdp.readUInt16LE(0) === TAG_AVDP && avdp.readUInt32LE(12) === lba) return { bs, avdp };
    }
  }
  return null;
}

export async function probeUdf(r: ProbeReader): Promise<ProbeResult | null> {
  const first = await r.read(VRS_OFFSET, 7);
  if (!first || !(KNOWN_VSD.has(first.toString("latin1", 1, 6)) || /^NSR0[23]$/.test(first.toString("latin1", 1, 6)))) {
    return null;
  }
  const sectorSize = r.source.sectorSize;
  const candidates = [sectorSize, ...[512, 1024, 2048, 4096].filter((s) => s !== sectorSize)];
  const anchor = await anchorBlockSize(r, candidates);
  if (!anchor) return null;
  const { bs, avdp } = anchor;
  const count = Math.min(Math.floor(avdp.readUInt32LE(16) / bs), MAX_VDS);
  const location = avdp.readUInt32LE(20);
  let label: string | null = null;
  let uuid: string | null = null;
  let udfRev = 0;
  let lvid: { loc: number; len: number } | null = null;
  for (let b = 0; b < count; b++) {
    const vd = await r.read((location + b) * bs, 512);
    if (!vd) return null;
    const type = vd.readUInt16LE(0);
    if (type === 0 || vd.readUInt32LE(12) !== location + b || type === TAG_TD) break;
    if (type === TAG_PVD && uuid === null && isOstaCharset(vd.subarray(200, 264))) {
      uuid = volsetUuid(vd.subarray(72, 200));
    } else if (type === TAG_LVD) {
      if (!lvid && vd.readUInt32LE(268) !== 0) lvid = { len: vd.readUInt32LE(432), loc: vd.readUInt32LE(436) };
      if (!udfRev && vd.toString("latin1", 217, 240).replace(/\0+$/, "") === "*OSTA UDF Compliant") udfRev = vd.readUInt16LE(240);
      if (label === null && isOstaCharset(vd.subarray(20, 84))) label = cleanLabel(dstring(vd.subarray(84, 212)));
    }
  }
  if (lvid && lvid.loc && lvid.len >= 512) {
    const d = await r.read(lvid.loc * bs, 512);
    if (d && d.readUInt16LE(0) === TAG_LVID && d.readUInt32LE(12) === lvid.loc) {
      const partitions = d.readUInt32LE(72);
      const impUseLength = d.readUInt32LE(76);
      const impUse = impUseLength >= 46 ? await r.read(lvid.loc * bs + 80 + 8 * partitions, 46) : null;
      if (impUse) {
        for (const rev of [impUse.readUInt16LE(40), impUse.readUInt16LE(42)]) if (rev && udfRev < rev) udfRev = rev;
      }
    }
  }
  const result: ProbeResult = { filesystem: "udf", label, uuid };
  if (udfRev) result.version = `${(udfRev >> 8).toString(16)}.${(udfRev & 0xff).toString(16).padStart(2, "0")}`;
  return result;
}
