/**
 * Helpers for the qcow2 tests: open a qcow2 file as openImage does (backing
 * files and data files resolved against the image's folder, loops refused),
 * hash a source, convert a source to qcow2 as `platter convert` does.
 */
import { createHash } from "node:crypto";
import { qcow2Writer, type Qcow2Source, type Qcow2WriterOptions } from "../../src/container/qcow2/index.js";
import { openImage } from "../../src/image/open-image.js";
import type { BlockSource } from "../../src/io/block-source.js";

export interface OpenOptions {
  noBacking?: boolean;
  warnings?: string[];
}

/** The qcow2 layer of the image at `path`; closing it closes the whole stack. */
export async function openQcow2File(path: string, options: OpenOptions = {}): Promise<Qcow2Source> {
  const image = await openImage(path, { noBacking: options.noBacking, indexCache: false, onWarning: (m) => options.warnings?.push(m) });
  const layer = image.layers[0];
  if (layer?.format !== "qcow2") {
    await image.close();
    throw new Error(`${path} did not open as qcow2 (layers: ${image.layers.map((l) => l.format).join(", ") || "none"})`);
  }
  // The layer itself, seen through an object whose close() closes the stack (openImage closes the layer).
  const qcow2 = Object.create(layer) as Qcow2Source;
  qcow2.close = () => image.close();
  return qcow2;
}

/** sha256 of a whole source, read in 1 MiB pieces (as qemu-img convert -O raw | sha256sum gives). */
export async function sha256Of(source: BlockSource, chunk = 1 << 20): Promise<string> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(chunk);
  for (let pos = 0; pos < source.size; pos += chunk) {
    const n = Math.min(chunk, source.size - pos);
    hash.update(await source.read(pos, n, buf.subarray(0, n)));
  }
  return hash.digest("hex");
}

/**
 * What `convert --to qcow2` will do (the integrator wires the command):
 * every data range of `source` into a new qcow2 image, `inFlight` writes of
 * `chunk` bytes at once.
 */
export async function convertToQcow2(source: BlockSource, dest: string, options: Qcow2WriterOptions = {}, chunk = 1 << 20, inFlight = 4): Promise<void> {
  const sink = await qcow2Writer.create(dest, { size: source.size, ...options });
  try {
    const ranges = source.dataRanges ? await source.dataRanges(0, source.size) : [[0, source.size] as [number, number]];
    const running = new Set<Promise<void>>();
    for (const [start, length] of ranges) {
      for (let pos = start; pos < start + length; pos += chunk) {
        const n = Math.min(chunk, start + length - pos);
        const job: Promise<void> = source.read(pos, n).then((buf) => sink.write(pos, buf));
        running.add(job);
        job.finally(() => running.delete(job)).catch(() => {});
        if (running.size >= inFlight) await Promise.race(running);
      }
    }
    await Promise.all(running);
  } finally {
    await sink.close();
  }
}
