/**
 * openImage: the one opener every command reads through. It opens a file or
 * block device, then peels container layers found by magic bytes (never by
 * the file's name) — a compressed stream, a virtual disk — each a
 * BlockSource over the one below, until the bytes are a raw disk:
 *
 *   disk.qcow2.zst  →  file → zstd → qcow2  →  the disk's bytes
 *
 * Partition tables and filesystems are read on top (partition-choice.ts,
 * open-filesystem.ts). Files a layer names (a backing file, an extent) are
 * opened through this same opener, relative to the folder of the image that
 * names them, as qemu resolves them; a chain that comes back to an image
 * already open, or goes deeper than any real one, is refused.
 */
import { realpath as realpathCallback } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { promisify } from "node:util";
import { CorruptImageError, UsageError } from "../errors.js";
import type { ContainerContext, ContainerSource } from "../container/format.js";
import { detectionBytes } from "../container/format.js";
import { CONTAINER_FORMATS } from "../container/registry.js";
import { type BlockSource, withClose } from "../io/block-source.js";
import type { ConcatSource } from "../io/concat-source.js";
import { FileSource, type OpenSourceOptions } from "../io/file-source.js";
import { DiskIndexCache } from "./index-cache.js";
import { openPieces, splitPieces } from "./split-image.js";

/** Containers inside containers: zstd over qcow2 is two; nobody nests five. */
const MAX_LAYERS = 4;
/** Backing files behind backing files: qemu allows deep chains; past this it is a loop in disguise. */
const MAX_CHAIN = 32;
/** fs's callback form: node:fs/promises costs every command 3 ms of start-up to load. */
const realpath = promisify(realpathCallback);

export interface OpenImageOptions extends OpenSourceOptions {
  /** The file's bytes as they are, with no container detection (a raw extent, `--from raw`). */
  raw?: boolean;
  /** Read a virtual disk's top layer alone, without its backing file (qcow2 `--no-backing`). */
  noBacking?: boolean;
  /** Open virtual disks despite table problems where they can (ContainerContext.lenient): `platter check`. */
  lenient?: boolean;
  /** Keep indexes that took a full pass under $XDG_CACHE_HOME/platter (default: yes). */
  indexCache?: boolean;
  /** What the caller does with the image, for the message refusing standard input: "reading files". */
  purpose?: string;
  onWarning?: (message: string) => void;
}

export interface OpenedImage {
  /** The path the user named. */
  readonly path: string;
  /** The decoded disk: what every command reads. */
  readonly source: BlockSource;
  /** The file or block device at the bottom (the pieces of a split image, end to end). */
  readonly file: FileSource | ConcatSource;
  /** The files read: [path], or a split image's pieces in order. */
  readonly files: readonly string[];
  /** Container layers, outermost first: [zstd, qcow2] for a zstd-compressed qcow2. */
  readonly layers: readonly ContainerSource[];
  close(): Promise<void>;
}

/** Real paths of the images open on the way to this one (backing chains), to refuse loops. */
type Chain = readonly string[];

export function openImage(path: string, options: OpenImageOptions = {}): Promise<OpenedImage> {
  return openInChain(path, options, []);
}

async function openInChain(path: string, options: OpenImageOptions, chain: Chain): Promise<OpenedImage> {
  if (path === "-") {
    throw new UsageError(
      `-: standard input is a stream, and ${options.purpose ?? "this"} needs random access (a file or block device); ` +
        "save it to a file first (platter capture - image.img)",
    );
  }
  const pieces = await splitPieces(path);
  const files = pieces ?? [path];
  const file = files.length > 1 ? await openPieces(files, options) : await FileSource.open(files[0], options);
  const layers: ContainerSource[] = [];
  try {
    const reals = await Promise.all(files.map((f) => realpath(f).catch(() => resolve(f))));
    const real = reals[0];
    if (chain.includes(real)) {
      throw new CorruptImageError(`${path}: the backing chain comes back to this image (${[...chain, real].join(" -> ")})`);
    }
    if (chain.length >= MAX_CHAIN) throw new CorruptImageError(`${path}: backing chain deeper than ${MAX_CHAIN} images`);
    if (!options.raw) {
      const context = contextFor(path, reals, file, options, [...chain, real]);
      let top: BlockSource = file;
      for (;;) {
        const layer = await openLayer(top, context(layers));
        if (!layer) break;
        layers.push(layer);
        top = layer;
        if (layers.length > MAX_LAYERS) {
          throw new CorruptImageError(`${path}: more than ${MAX_LAYERS} container layers (${layers.map((l) => l.format).join(" over ")})`);
        }
      }
    }
  } catch (err) {
    await closeAll(layers, file);
    throw err;
  }
  return {
    path,
    source: layers.at(-1) ?? file,
    file,
    files,
    layers,
    close: () => closeAll(layers, file),
  };
}

/** Innermost first: each layer may still need the one below while it closes. */
async function closeAll(layers: ContainerSource[], file: BlockSource): Promise<void> {
  for (const layer of [...layers].reverse()) await layer.close().catch(() => {});
  await file.close();
}

/** The first format that recognises `source`, opened; null when it is raw. */
async function openLayer(source: BlockSource, context: ContainerContext): Promise<ContainerSource | null> {
  if (source.size === 0) return null;
  const { head, tail } = await detectionBytes(source);
  for (const format of CONTAINER_FORMATS) {
    let found = false;
    try {
      found = await format.detect(head, source, tail);
    } catch {
      found = false; // a detector that trips over a foreign file has not found its format
    }
    if (found) return format.open(source, context);
  }
  return null;
}

/** The context layer N of `path` gets: related files relative to its folder, an index cache keyed by the layers above. */
function contextFor(path: string, reals: readonly string[], file: FileSource | ConcatSource, options: OpenImageOptions, chain: Chain) {
  return (above: readonly ContainerSource[]): ContainerContext => ({
    async openRelated(name, related = {}) {
      const target = isAbsolute(name) ? name : resolve(dirname(path), name);
      const opened = await openInChain(target, { ...options, raw: related.raw ?? false, purpose: undefined }, chain);
      return ownedSource(opened);
    },
    indexCache: options.indexCache === false ? undefined : new DiskIndexCache(reals, file, above.map((l) => l.format)),
    noBacking: options.noBacking,
    lenient: options.lenient,
    onWarning: options.onWarning,
  });
}

/** An opened image as one BlockSource whose close() closes its whole stack (a related image, a capture SOURCE). */
export function ownedSource(opened: OpenedImage): BlockSource {
  return withClose(opened.source, () => opened.close());
}
