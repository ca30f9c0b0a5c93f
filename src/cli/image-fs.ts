/**
 * What ls, cat and extract share: open IMAGE, pick the partition (--part N,
 * or the only filesystem there is) and open the filesystem on it.
 */
import { UnsupportedError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { openSource } from "../io/file-source.js";
import { openFilesystem } from "../fs/open.js";
import type { FileSystem, FsNode } from "../fs/types.js";
import { parseCount } from "../util/units.js";

export interface OpenedImage {
  fs: FileSystem<FsNode>;
  source: BlockSource;
  close(): Promise<void>;
}

export async function openImageFilesystem(image: string, part?: string): Promise<OpenedImage> {
  const disk = await openSource(image);
  try {
    if (part !== undefined) {
      parseCount(part, "--part", 1);
      throw new UnsupportedError("--part: partition tables are not read by this build yet");
    }
    const fs = await openFilesystem(disk);
    return {
      fs,
      source: disk,
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
