/**
 * What ls, cat, extract (and a FUSE mount) share: open an image through
 * every layer, pick the partition (--part N; without it the whole image if
 * it is a filesystem, else the one partition platter can read, else an
 * error listing them) and open its filesystem.
 */
import { canRead, openFilesystem } from "../fs/open.js";
import type { FileSystem, FsNode } from "../fs/types.js";
import type { BlockSource } from "../io/block-source.js";
import { openImage, type OpenedImage, type OpenImageOptions } from "./open-image.js";
import { choosePartition, type PartitionChoice } from "./partition-choice.js";

export interface ImageFilesystem {
  fs: FileSystem<FsNode>;
  /** The partition (or whole image) the filesystem is on. */
  source: BlockSource;
  image: OpenedImage;
  choice: PartitionChoice;
  close(): Promise<void>;
}

export interface OpenImageFilesystemOptions extends OpenImageOptions {
  /** --part N. */
  part?: number;
  /** Told about a damaged table, a truncated partition, an unreplayed journal... before anything is read. */
  onWarning?: (message: string) => void;
}

export async function openImageFilesystem(path: string, options: OpenImageFilesystemOptions = {}): Promise<ImageFilesystem> {
  const image = await openImage(path, { purpose: "reading files", ...options });
  try {
    const choice = await choosePartition(image.source, { part: options.part, purpose: "read", usable: (_, probe) => canRead(probe) });
    for (const message of choice.warnings) options.onWarning?.(message);
    const fs = await openFilesystem(choice.source, choice.probe);
    for (const message of fs.warnings ?? []) options.onWarning?.(message);
    return {
      fs,
      source: choice.source,
      image,
      choice,
      async close() {
        await fs.close();
        await image.close();
      },
    };
  } catch (err) {
    await image.close();
    throw err;
  }
}
