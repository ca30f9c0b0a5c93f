/**
 * The source `hash` and `capture` read: a stream is read once as it is
 * (stream-source.ts); a file or block device goes through openImage, so a
 * compressed or virtual-disk image gives the disk it holds. With no
 * container layer the FileSource itself comes back: the fast path (direct
 * reads, holes, copy_file_range) stays as it was.
 */
import { type BlockSource, withClose } from "../io/block-source.js";
import type { OpenSourceOptions } from "../io/file-source.js";
import { isStream, StreamSource } from "../io/stream-source.js";
import { UsageError } from "../errors.js";
import { readDiskTable } from "../image/disk-table.js";
import { openImage, ownedSource } from "../image/open-image.js";
import { openPartition } from "../image/partition-choice.js";

export interface ImageSourceOptions extends OpenSourceOptions {
  /** The file's bytes as they are: no container layer (`--raw`). */
  raw?: boolean;
  /** Only partition N of the disk (Linux numbering), as `--part N`. */
  part?: number;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
}

export async function openImageOrStream(path: string, options: ImageSourceOptions = {}): Promise<BlockSource | StreamSource> {
  if (await isStream(path)) {
    if (options.part !== undefined) throw new UsageError(`--part needs the partition table, which a stream (${path}) cannot be read back for; save it to a file first`);
    return StreamSource.open(path, { signal: options.signal });
  }
  const { raw, direct, sectorSize, onWarning } = options;
  const opened = await openImage(path, { raw, direct, sectorSize, onWarning });
  const disk = opened.layers.length === 0 ? opened.file : ownedSource(opened);
  if (options.part === undefined) return disk;
  try {
    const warnings: string[] = [];
    const table = await readDiskTable(disk);
    const partition = openPartition(disk, table, options.part, warnings);
    for (const w of warnings) onWarning?.(w);
    // A slice leaves its parent open; this one closes the image it was cut from.
    return withClose(partition, () => disk.close());
  } catch (err) {
    await disk.close();
    throw err;
  }
}

