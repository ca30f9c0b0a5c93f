/**
 * The source `hash` and `capture` read: a stream is read once as it is
 * (stream-source.ts); a file or block device goes through openImage, so a
 * compressed or virtual-disk image gives the disk it holds. With no
 * container layer the FileSource itself comes back: the fast path (direct
 * reads, holes, copy_file_range) stays as it was.
 */
import type { BlockSource } from "../io/block-source.js";
import type { OpenSourceOptions } from "../io/file-source.js";
import { isStream, StreamSource } from "../io/stream-source.js";
import { openImage, ownedSource } from "../image/open-image.js";

export interface ImageSourceOptions extends OpenSourceOptions {
  /** The file's bytes as they are: no container layer (`--raw`). */
  raw?: boolean;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
}

export async function openImageOrStream(path: string, options: ImageSourceOptions = {}): Promise<BlockSource | StreamSource> {
  if (await isStream(path)) return StreamSource.open(path, { signal: options.signal });
  const { raw, direct, sectorSize, onWarning } = options;
  const opened = await openImage(path, { raw, direct, sectorSize, onWarning });
  return opened.layers.length === 0 ? opened.file : ownedSource(opened);
}
