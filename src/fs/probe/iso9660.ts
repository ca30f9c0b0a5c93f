/**
 * ISO 9660 (blkid: iso9660). The label is the primary volume descriptor's
 * volume id, or the Joliet one when it says more; the "UUID" is the volume
 * modification date (else the creation date) as YYYY-MM-DD-HH-MM-SS-hh.
 */
import type { ProbeReader } from "./reader.js";
import { byteLabel, utf16Label } from "./text.js";
import type { ProbeResult } from "./types.js";

const SYSTEM_AREA = 0x8000;
const SECTOR = 2048;
const MAX_DESCRIPTORS = 16;
const VD_BOOT_RECORD = 0;
const VD_SUPPLEMENTARY = 2;
const VD_END = 0xff;
const JOLIET_ESCAPES = ["%/@", "%/C", "%/E"];

/** A 17-byte ISO date as blkid's UUID, or null when unset (all '0' digits and zero offset). */
function dateUuid(d: Buffer): string | null {
  const digits = d.toString("latin1", 0, 16);
  if (/^0{16}$/.test(digits) && d[16] === 0) return null;
  if (d.subarray(0, 16).every((b) => b === 0)) return null;
  const p = (a: number, b: number) => digits.slice(a, b);
  return `${p(0, 4)}-${p(4, 6)}-${p(6, 8)}-${p(8, 10)}-${p(10, 12)}-${p(12, 14)}-${p(14, 16)}`;
}

/** blkid's test: do the 16 ASCII bytes of the PVD label equal the Joliet label's 32 UTF-16BE bytes? */
function asciiEqualsUtf16be(ascii: Buffer, utf16: Buffer): boolean {
  for (let a = 0, u = 0; u < 32; a++, u += 2) {
    if (utf16[u] !== 0 || ascii[a] !== utf16[u + 1]) return false;
  }
  return true;
}

export async function probeIso9660(r: ProbeReader): Promise<ProbeResult | null> {
  const pvd = await r.read(SYSTEM_AREA, SECTOR);
  if (!pvd) return null;
  if (pvd.toString("latin1", 9, 14) === "CDROM") {
    return { filesystem: "iso9660", label: byteLabel(pvd.subarray(8 + 32 + 8, 8 + 32 + 8 + 32)), uuid: null, version: "High Sierra" };
  }
  if (pvd.toString("latin1", 1, 6) !== "CD001") return null;
  const pvdLabel = pvd.subarray(40, 72);
  const uuid = dateUuid(pvd.subarray(830, 847)) ?? dateUuid(pvd.subarray(813, 830));
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const vd = await r.read(SYSTEM_AREA + SECTOR * (i + 1), SECTOR);
    if (!vd || vd[0] === VD_END) break;
    if (vd[0] === VD_BOOT_RECORD || vd[0] !== VD_SUPPLEMENTARY) continue;
    if (!JOLIET_ESCAPES.includes(vd.toString("latin1", 88, 91))) continue;
    const jolietLabel = vd.subarray(40, 72);
    const label = asciiEqualsUtf16be(pvdLabel, jolietLabel) ? byteLabel(pvdLabel) : utf16Label(jolietLabel, true);
    return { filesystem: "iso9660", label, uuid, version: "Joliet Extension" };
  }
  return { filesystem: "iso9660", label: byteLabel(pvdLabel), uuid };
}
