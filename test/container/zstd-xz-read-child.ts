/**
 * Reads an image through openImage in a process of its own, so a test can
 * see its peak memory (test/helpers/peak-rss.ts) on a hostile or huge input:
 *   node --import tsx test/container/zstd-xz-read-child.ts IMAGE OFFSET...
 * reads 64 KiB at each OFFSET (negative: from the end), in the order given,
 * and prints one line of JSON: { size, sha256 of what was read, error }.
 */
import { createHash } from "node:crypto";
import { openImage } from "../../src/image/open-image.js";

const [path, ...offsets] = process.argv.slice(2);
const hash = createHash("sha256");
let size = -1;
let error: string | null = null;
try {
  const image = await openImage(path as string, { indexCache: false });
  try {
    size = image.source.size;
    for (const o of offsets.map(Number)) {
      const at = o < 0 ? size + o : o;
      hash.update(await image.source.read(at, Math.min(65536, size - at)));
    }
  } finally {
    await image.close();
  }
} catch (err) {
  error = `${(err as Error).name}: ${(err as Error).message}`;
}
process.stdout.write(`${JSON.stringify({ size, sha256: hash.digest("hex"), error })}\n`);
