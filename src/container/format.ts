/**
 * A container is a layer between the bytes of a file and the disk they hold:
 * a compressed stream (gzip, xz, zstd, bzip2) or a virtual disk (qcow2, VHD,
 * VHDX, VMDK, VDI, partclone). Each format is a small module that says
 * whether a source is its kind (by magic bytes or footer, never by name) and
 * opens it as a BlockSource of the bytes it holds. openImage (src/image/)
 * stacks them: zstd over qcow2 over a file is three sources, each reading the
 * one below.
 */
import type { BlockSink, BlockSource } from "../io/block-source.js";

/** info --json's `format` names (DESIGN.md). */
export type ContainerName = "gzip" | "xz" | "zstd" | "bzip2" | "qcow2" | "vhd" | "vhdx" | "vmdk" | "vdi" | "partclone";

export interface ContainerFormat {
  readonly name: ContainerName;
  /**
   * Is `source` this format? `head` is its first bytes (HEAD_BYTES, or all of
   * a smaller source); `tail` its last TAIL_BYTES, for a format found by a
   * footer (VHD fixed), or undefined where the end costs more than a read
   * (a stream decoded from its start) or the source is too small to hold one.
   * Must not throw for a source of another kind.
   */
  detect(head: Buffer, source: BlockSource, tail: Buffer | undefined): boolean | Promise<boolean>;
  /** The decoded bytes as a source; a corrupt container is a CorruptImageError naming the format and offset. */
  open(source: BlockSource, context: ContainerContext): Promise<ContainerSource>;
  /**
   * Optional: `platter check` of the structure (tables, refcounts), as the
   * format's own tool checks it. Runs on the source below the layer, so an
   * image too damaged to open (or flagged corrupt) is still checked.
   */
  check?(source: BlockSource): Promise<ContainerCheckReport>;
}

/** What a structural check finds (`platter check`); qemu-img check's terms. */
export interface ContainerCheckReport {
  readonly format: ContainerName;
  /** No corruption and no leak. */
  clean: boolean;
  /** Errors that put data at risk. */
  corruptions: number;
  /** Space used for nothing: no harm to data. */
  leaks: number;
  problems: Array<{ severity: "corruption" | "leak"; message: string; guest?: [number, number] }>;
  /** Problems beyond those listed, counted only. */
  problemsNotListed: number;
  /** Bytes of the image this layer holds whose content a corruption puts in doubt: [offset, length], merged, in order. */
  damagedGuestRanges: Array<[number, number]>;
}

/** Bytes detect() is shown: enough for every header the formats start with. */
export const HEAD_BYTES = 4096;
/** Bytes of the end detect() is shown: a VHD footer. */
export const TAIL_BYTES = 512;

/**
 * What detect() is shown of `source`, both ends read at once: on a
 * compressed layer each may be a block to decode (a third of the time
 * before a .bz2 was converted went on decoding these two, one after the
 * other). The end only where reading it is a read: a stream that is not
 * seekable would be decoded whole to reach it.
 */
export async function detectionBytes(source: BlockSource): Promise<{ head: Buffer; tail: Buffer | undefined }> {
  const cheapEnd = source.seekable !== false && source.size >= 2 * TAIL_BYTES;
  const [head, tail] = await Promise.all([
    source.read(0, Math.min(HEAD_BYTES, source.size)),
    // A damaged layer may not read that far: then there is no footer to find.
    cheapEnd ? source.read(source.size - TAIL_BYTES, TAIL_BYTES).catch(() => undefined) : undefined,
  ]);
  return { head, tail };
}

export interface ContainerContext {
  /**
   * Open a file this layer names (a qcow2 backing file, a VMDK extent, a VHD
   * parent), resolved against the folder of the image the way qemu does, and
   * itself opened through every layer. Loops (an image that is its own
   * backing file) and over-long chains are refused by the opener.
   */
  openRelated(name: string, options?: { raw?: boolean }): Promise<BlockSource>;
  /**
   * Where an index that took a full pass to build may be kept, so a second
   * command on the same image does not pay again; undefined when caching is off.
   */
  indexCache?: IndexCache;
  /** Read the top layer alone (qcow2 `--no-backing`). */
  noBacking?: boolean;
  /**
   * Open despite problems in the tables (a block past the end, blocks that
   * overlap) as far as the structure allows: `platter check`, which reports
   * them itself, reads the partition table through the damage. A format
   * that cannot go on still refuses.
   */
  lenient?: boolean;
  onWarning?: (message: string) => void;
}

/**
 * Indexes kept between runs, keyed by the image's identity (path, size, mtime)
 * and a name. What load() returns is as untrusted as the image: decode it
 * with the same checks, and rebuild when it does not fit.
 */
export interface IndexCache {
  load(name: string): Promise<Buffer | undefined>;
  save(name: string, data: Buffer): Promise<void>;
}

/**
 * close() releases what the layer itself opened (related files, workers);
 * the source below belongs to the opener, which closes it after the layer.
 */
export interface ContainerSource extends BlockSource {
  readonly format: ContainerName;
  /** Random access is cheap (an index or table), not a re-read from the start. */
  readonly seekable: boolean;
  /** What `info` shows about this layer (cluster size, compression, backing file...), JSON-ready. */
  describe(): Record<string, unknown>;
  /** Optional: details that cost reads (a walk of the file's data ranges), asked for by `info` alone. */
  measure?(): Promise<Record<string, unknown>>;
  /** Optional: a check of the opened layer, for formats whose check needs it open (else ContainerFormat.check). */
  check?(): Promise<ContainerCheckReport>;
}

/**
 * Writing a container: convert and capture write through a BlockSink
 * (src/io/block-source.ts). A compressed stream is a sequential sink
 * (offsets come contiguous, as to a pipe; writeZeros is cheap: zero runs must
 * not cost the compressor); a virtual disk (qcow2) takes writes in any order.
 */
export interface ContainerWriter {
  readonly name: ContainerName;
  /** DEST extensions that choose this format when --to is not given: [".zst"]. */
  readonly extensions: readonly string[];
  /** Create DEST (replacing a file; never a device the user did not name). */
  create(path: string, options: WriterOptions): Promise<ContainerSink>;
  /**
   * Reopen a DEST an interrupted capture left (kill -9): cut it back to its
   * last complete frame/member/block/cluster and say how many leading bytes of
   * the image it holds for sure (sequential formats) so the capture goes on
   * from there. Formats that cannot resume omit it.
   */
  resume?(path: string, options: WriterOptions): Promise<{ sink: ContainerSink; committed: number }>;
}

export interface WriterOptions {
  /** The image's size in bytes (the virtual size of a disk format), when known up front. */
  size?: number;
  /** Compression level (format's own scale); default: the reference tool's default. */
  level?: number;
  /** Worker threads; default: the number of cores. */
  threads?: number;
  /** DEST's file name once complete (the writer may be given a temporary path): a VMDK names its own extent. */
  destName?: string;
  /** Format-specific choices (qcow2 compression type, VHD type...), validated by the writer. */
  [option: string]: unknown;
}

export interface ContainerSink extends BlockSink {
  readonly format: ContainerName;
  /**
   * Sequential formats: the leading image bytes held by whole frames (members,
   * blocks) in the file, durable after flush(); the frame still filling is
   * not. A capture's mapfile never claims more than this.
   */
  readonly committed?: number;
}
