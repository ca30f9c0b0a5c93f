/**
 * Parents and extents are named by paths that may not exist here (an
 * absolute Windows path, a name the image was renamed from): each format
 * gives its candidates, best first, and the first that exists is opened.
 */
import { DeviceError, errnoCode } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerContext } from "../format.js";

/** The first of `names` that exists, opened through context.openRelated; undefined when none does. A name that exists but fails to open is an error. */
export async function openFirstRelated(
  context: ContainerContext,
  names: readonly string[],
  options?: { raw?: boolean },
): Promise<{ source: BlockSource; name: string } | undefined> {
  for (const name of names) {
    try {
      return { source: await context.openRelated(name, options), name };
    } catch (err) {
      if (errnoCode(err) === "ENOENT" || (err instanceof DeviceError && err.code === "ENOENT")) continue;
      throw err;
    }
  }
  return undefined;
}

/** "C:\\VMs\\base.vhd" or "/vms/base.vhd" → "base.vhd". */
export function lastPathComponent(path: string): string | undefined {
  const name = path.split(/[\\/]/).pop();
  return name && name !== "." && name !== ".." ? name : undefined;
}
