/**
 * Probing as a command needs it on a failing or damaged disk: a sector that
 * cannot be read (EIO), or a structure a prober trips over, makes that one
 * partition "unknown" with a warning saying why, and the command goes on to
 * the next. parts on a failing drive lists every partition it can.
 */
import { PlatterError } from "../errors.js";
import { probeFilesystem, type ProbeResult } from "../fs/probe.js";
import type { BlockSource } from "../io/block-source.js";

export async function probeOrWarn(source: BlockSource, warnings: string[]): Promise<ProbeResult | null> {
  try {
    return await probeFilesystem(source);
  } catch (err) {
    const why = err instanceof PlatterError ? err.message : `internal error in a filesystem probe: ${err instanceof Error ? err.message : String(err)}`;
    warnings.push(`${source.name}: filesystem unknown (${why})`);
    return null;
  }
}
