/**
 * What ls, cat and extract share: open IMAGE, pick the partition (--part N;
 * without it the whole image if it is a filesystem, else the one partition
 * platter can read, else an error listing them) and open its filesystem.
 */
import type { BlockSource } from "../io/block-source.js";
import { openSource } from "../io/file-source.js";
import { canRead, openFilesystem } from "../fs/open.js";
import type { FileSystem, FsNode } from "../fs/types.js";
import { choosePartition } from "../partition/select.js";
import { UsageError } from "../errors.js";
import { parseCount } from "../util/units.js";
import { warn } from "./output.js";

export interface OpenedImage {
  fs: FileSystem<FsNode>;
  /** The partition (or whole image) the filesystem is on. */
  source: BlockSource;
  close(): Promise<void>;
}

export async function openImageFilesystem(image: string, part?: string): Promise<OpenedImage> {
  // A filesystem is read here and there, not front to back: a stream will not do.
  if (image === "-") throw new UsageError("IMAGE '-' (standard input) cannot be read here: reading a filesystem needs a file or a device; save the stream to a file first");
  const number = part === undefined ? undefined : parseCount(part, "partition number", 1);
  const disk = await openSource(image);
  try {
    const choice = await choosePartition(disk, { part: number, purpose: "read", usable: (_, probe) => canRead(probe) });
    // A damaged table (a truncated image, a bad primary GPT) matters even when a usable partition was found.
    for (const message of choice.table.warnings) warn(message);
    const fs = await openFilesystem(choice.source, choice.probe);
    for (const message of fs.warnings ?? []) warn(message);
    return {
      fs,
      source: choice.source,
      async close() {
        await fs.close();
        await disk.close();
      },
    };
  } catch (err) {
    await disk.close();
    throw err;
  }
}
