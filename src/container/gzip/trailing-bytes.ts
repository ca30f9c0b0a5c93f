import type { BlockSource } from "../../io/block-source.js";
import { isAllZero, ZEROS } from "../../io/zeros.js";

/**
 * Bytes after the last gzip member that are not a member: zeros (tape or
 * block padding) or anything else. gzip ignores both ("trailing garbage
 * ignored"); so does platter, saying so.
 */
export async function warnTrailingBytes(source: BlockSource, at: number, onWarning?: (message: string) => void): Promise<void> {
  let zeros = true;
  for (let pos = at; pos < source.size && zeros; pos += ZEROS.length) {
    zeros = isAllZero(await source.read(pos, Math.min(ZEROS.length, source.size - pos)));
  }
  const what = zeros ? "zero bytes" : "bytes that are not a gzip member";
  onWarning?.(`${source.name}: ${source.size - at} ${what} after the last gzip member (offset ${at}) ignored`);
}
