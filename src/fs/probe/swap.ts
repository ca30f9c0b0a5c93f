/**
 * Linux swap (blkid: swap). The signature sits in the last 10 bytes of the
 * first page, so its place depends on the page size of the machine that ran
 * mkswap; the UUID and label follow the version-1 header at 1024.
 */
import type { ProbeReader } from "./reader.js";
import { byteLabel, dceUuid } from "./text.js";
import type { ProbeResult } from "./types.js";

const PAGE_SIZES = [4096, 8192, 16384, 32768, 65536];

/** The size of the header page: where the signature sits, the page size of the machine that ran mkswap. */
export async function swapPageSize(r: ProbeReader): Promise<number | null> {
  for (const page of PAGE_SIZES) {
    const magic = await r.read(page - 10, 10);
    if (!magic) return null;
    const text = magic.toString("latin1");
    if (text === "SWAP-SPACE" || text === "SWAPSPACE2") return page;
  }
  return null;
}

export async function probeSwap(r: ProbeReader): Promise<ProbeResult | null> {
  const page = await swapPageSize(r);
  if (page === null) return null;
  const text = ((await r.read(page - 10, 10)) as Buffer).toString("latin1");
  if (text === "SWAP-SPACE") return { filesystem: "swap", label: null, uuid: null, version: "0" };
  const h = await r.read(1024, 44);
  if (!h) return null;
  // Version 1 in either byte order (swap made on a big-endian machine), and a non-empty area.
  const le = h.readUInt32LE(0) === 1;
  const be = h.readUInt32BE(0) === 1;
  if (!le && !be) return null;
  if ((le ? h.readUInt32LE(4) : h.readUInt32BE(4)) === 0) return null;
  return { filesystem: "swap", label: byteLabel(h.subarray(28, 44)), uuid: dceUuid(h.subarray(12, 28)), version: "1" };
}
