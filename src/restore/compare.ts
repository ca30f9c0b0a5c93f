/**
 * verify: are two images the same bytes? Both sides are opened through
 * openImage, so a .zst image compares against the disk it was restored to,
 * or a qcow2 against a raw copy. Runs both sides know to be zero (holes,
 * unallocated clusters) are not read. Like `cmp -l`, every differing byte
 * is counted and the first few are listed with both values.
 */
import { openImage, type OpenedImage } from "../image/open-image.js";
import type { BlockSource } from "../io/block-source.js";
import { InterruptedError } from "../errors.js";
import { OrderedWindow } from "../util/ordered-window.js";
import { ChunkBuffers } from "./chunk-buffers.js";
import { mergeRanges } from "./patched-source.js";

const CHUNK = 4 << 20;
const READ_AHEAD = 4;
/** Differences listed by offset; the rest are only counted. */
export const LISTED_DIFFERENCES = 10;

/** A byte as both commands show it: 0x0a. */
export function byteHex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, "0")}`;
}

export interface Difference {
  offset: number;
  image: number;
  target: number;
}

export interface CompareResult {
  image: string;
  target: string;
  imageSize: number;
  targetSize: number;
  /** Bytes compared: the part both sides have. */
  compared: number;
  differingBytes: number;
  /** The first differing bytes, in order (at most LISTED_DIFFERENCES). */
  differences: Difference[];
  /**
   * The image is all there: no byte of the common part differs and TARGET is
   * as long, or is a block device that is longer (a disk is bigger than the
   * image written to it; its tail is not the image's business).
   */
  equal: boolean;
  seconds: number;
}

export interface CompareOptions {
  signal?: AbortSignal;
  interruptedBy?: () => NodeJS.Signals | undefined;
  onProgress?: (done: number, total: number) => void;
  onWarning?: (message: string) => void;
}

export async function compareImages(imagePath: string, targetPath: string, options: CompareOptions = {}): Promise<CompareResult> {
  const started = Date.now();
  const open = (path: string) => openImage(path, { purpose: "comparing", direct: "cold", onWarning: options.onWarning });
  const image = await open(imagePath);
  let target: OpenedImage | undefined;
  try {
    target = await open(targetPath);
    const a = image.source;
    const b = target.source;
    const compared = Math.min(a.size, b.size);
    const { differingBytes, differences } = await compareRange(a, b, compared, options);
    const longerDisk = b.size > a.size && target.file.isBlockDevice && target.layers.length === 0;
    return {
      image: imagePath,
      target: targetPath,
      imageSize: a.size,
      targetSize: b.size,
      compared,
      differingBytes,
      differences,
      equal: differingBytes === 0 && (a.size === b.size || longerDisk),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await target?.close();
    await image.close();
  }
}

/** The ranges of [0, length) either side may hold data in: outside them both read zeros. */
async function eitherData(a: BlockSource, b: BlockSource, length: number): Promise<Array<[number, number]>> {
  if (!a.dataRanges || !b.dataRanges || length === 0) return [[0, length]];
  return mergeRanges([...(await a.dataRanges(0, length)), ...(await b.dataRanges(0, length))]);
}

async function compareRange(a: BlockSource, b: BlockSource, length: number, options: CompareOptions) {
  const ranges = await eitherData(a, b, length);
  const total = ranges.reduce((sum, [, n]) => sum + n, 0);
  let done = 0;
  let differingBytes = 0;
  const differences: Difference[] = [];
  const buffers = new ChunkBuffers(2 * (READ_AHEAD + 2), CHUNK);
  const window = new OrderedWindow<{ offset: number; x: Buffer; y: Buffer }>(READ_AHEAD, ({ offset, x, y }) => {
    if (!x.equals(y)) {
      for (let i = 0; i < x.length; i++) {
        if (x[i] === y[i]) continue;
        differingBytes++;
        if (differences.length < LISTED_DIFFERENCES) differences.push({ offset: offset + i, image: x[i], target: y[i] });
      }
    }
    done += x.length;
    buffers.give(x);
    buffers.give(y);
    options.onProgress?.(done, total);
  });
  for (const [start, n] of ranges) {
    for (let at = start; at < start + n; at += CHUNK) {
      if (options.signal?.aborted) {
        await window.drain();
        throw new InterruptedError(`interrupted: compared ${done} of ${total} bytes`, options.interruptedBy?.());
      }
      const len = Math.min(CHUNK, start + n - at);
      await window.push(async () => {
        const [x, y] = await Promise.all([a.read(at, len, buffers.take(len)), b.read(at, len, buffers.take(len))]);
        return { offset: at, x, y };
      });
    }
  }
  await window.drain();
  return { differingBytes, differences };
}
