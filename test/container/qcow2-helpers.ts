/**
 * Opening qcow2 files the way openImage will (src/image/, written by the
 * integrator): a ContainerContext whose openRelated resolves a backing or
 * data file name against the folder of the image naming it (as qemu does),
 * detects qcow2 by magic, and refuses loops and absurdly deep chains.
 */
import { realpathSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { createHash } from "node:crypto";
import type { ContainerContext } from "../../src/container/format.js";
import { qcow2Writer, Qcow2Source, type Qcow2WriterOptions } from "../../src/container/qcow2/index.js";
import { hasQcow2Magic } from "../../src/container/qcow2/header.js";
import { CorruptImageError } from "../../src/errors.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { FileSource } from "../../src/io/file-source.js";

export const MAX_CHAIN = 16;

export interface OpenOptions {
  noBacking?: boolean;
  warnings?: string[];
}

/** A BlockSource that closes the file under it too (the chain's layers own their files here). */
async function openLayer(path: string, chain: string[], options: OpenOptions, raw: boolean): Promise<BlockSource> {
  const real = realpathSync(path);
  if (chain.includes(real)) throw new CorruptImageError(`${path}: backing chain loops (${[...chain, real].join(" -> ")})`);
  if (chain.length >= MAX_CHAIN) throw new CorruptImageError(`${path}: backing chain deeper than ${MAX_CHAIN} images`);
  const file = await FileSource.open(path);
  if (raw || file.size < 4 || !hasQcow2Magic(await file.read(0, 4))) return file;
  const context: ContainerContext = {
    openRelated: (name, related) => openLayer(isAbsolute(name) ? name : join(dirname(path), name), [...chain, real], options, Boolean(related?.raw)),
    noBacking: options.noBacking,
    onWarning: (message) => options.warnings?.push(message),
  };
  try {
    const source = await Qcow2Source.open(file, context);
    const close = source.close.bind(source);
    source.close = async () => {
      await close();
      await file.close();
    };
    return source;
  } catch (err) {
    await file.close();
    throw err;
  }
}

export function openQcow2File(path: string, options: OpenOptions = {}): Promise<Qcow2Source> {
  return openLayer(path, [], options, false) as Promise<Qcow2Source>;
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
