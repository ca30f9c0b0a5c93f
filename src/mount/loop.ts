/**
 * Loop devices through util-linux's losetup: a read-only (or read-write)
 * window of an image, with the partition's offset and size limit, so the
 * kernel sees exactly the partition and nothing beyond it.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { runTool } from "./exec.js";

export interface LoopOptions {
  offset: number;
  sizeLimit: number;
  readOnly: boolean;
}

/** Attach `image` to the first free loop device; returns its path (/dev/loop3). */
export async function attachLoop(image: string, options: LoopOptions): Promise<string> {
  const args = ["--find", "--show", "--offset", String(options.offset)];
  if (options.sizeLimit > 0) args.push("--sizelimit", String(options.sizeLimit));
  if (options.readOnly) args.push("--read-only");
  const { stdout } = await runTool("losetup", [...args, image]);
  return stdout.trim();
}

export async function detachLoop(device: string): Promise<void> {
  await runTool("losetup", ["--detach", device]);
}

/** The file behind a loop device, or null when it is not a loop device or not attached. */
export function loopBackingFile(device: string): string | null {
  if (!/^\/dev\/loop\d+$/.test(device)) return null;
  try {
    return readFileSync(`/sys/block/${basename(device)}/loop/backing_file`, "utf8").trim();
  } catch {
    return null;
  }
}
