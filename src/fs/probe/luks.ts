/** LUKS1 and LUKS2 encrypted volumes (blkid: crypto_LUKS). The header at 0 says which. */
import type { ProbeReader } from "./reader.js";
import { byteLabel } from "./text.js";
import type { ProbeResult } from "./types.js";

const MAGIC = Buffer.from("LUKS\xba\xbe", "latin1");

export async function probeLuks(r: ProbeReader): Promise<ProbeResult | null> {
  const h = await r.read(0, 512);
  if (!h || !h.subarray(0, 6).equals(MAGIC)) return null;
  const version = h.readUInt16BE(6);
  if (version !== 1 && version !== 2) return null;
  return {
    filesystem: "crypto_LUKS",
    // LUKS1 has no label; LUKS2 keeps one (48 bytes) at 24.
    label: version === 2 ? byteLabel(h.subarray(24, 72)) : null,
    uuid: byteLabel(h.subarray(168, 208)),
    version: String(version),
  };
}
