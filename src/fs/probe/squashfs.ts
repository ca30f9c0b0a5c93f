/** SquashFS (blkid: squashfs for version 4, squashfs3 before). No label, no UUID. */
import type { ProbeReader } from "./reader.js";
import type { ProbeResult } from "./types.js";

export async function probeSquashfs(r: ProbeReader): Promise<ProbeResult | null> {
  const sb = await r.read(0, 96);
  if (!sb) return null;
  const magic = sb.toString("latin1", 0, 4);
  if (magic !== "hsqs" && magic !== "sqsh") return null;
  const le = magic === "hsqs";
  const major = le ? sb.readUInt16LE(28) : sb.readUInt16BE(28);
  const minor = le ? sb.readUInt16LE(30) : sb.readUInt16BE(30);
  if (major >= 4 && le) return { filesystem: "squashfs", label: null, uuid: null, version: `${major}.${minor}` };
  if (major < 4 && major > 0) return { filesystem: "squashfs3", label: null, uuid: null, version: `${major}.${minor}` };
  return null;
}
