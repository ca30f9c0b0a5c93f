/**
 * What `platter dd` reads: a file or block device at explicit offsets, or a
 * stream (a pipe, a FIFO, standard input, a character device) front to back,
 * one read(2) per call either way, as GNU dd reads. They differ where dd's
 * input must move without reading: skip= seeks a file but reads a stream
 * (each read counting as one skipped block), and after a read error a file
 * is advanced past the bad block while a stream cannot be.
 */
import type { FileSource } from "../io/file-source.js";
import { openSource } from "../io/file-source.js";
import { isStream, readFull, type SequentialSource, StreamSource } from "../io/stream-source.js";

/** One read(2) at a time at the input's position (readOnce); readFull gathers iflag=fullblock's full blocks. */
export interface DdInput extends SequentialSource {
  /** The size of a file or device; undefined for a stream. */
  readonly size: number | undefined;
  /** Bytes from the start of the input to the next read. */
  readonly position: number;
  /** Skip `blocks` blocks of `bs` bytes before the copy; false if the input ended first (dd then warns). */
  skip(blocks: number, bs: number, fullblock: boolean): Promise<boolean>;
  /** After a read error: move past `length` bytes, where the input can move (not a stream). */
  passBadBlock(length: number): void;
  /** Back to `position` after a failed iflag=fullblock read, whose bytes GNU dd drops (a stream cannot go back). */
  rewind(position: number): void;
}

/** A file or block device, read at explicit offsets. */
export class FileInput implements DdInput {
  position = 0;
  constructor(readonly source: FileSource) {}

  get name(): string {
    return this.source.name;
  }

  get size(): number {
    return this.source.size;
  }

  async readOnce(into: Buffer, length = into.length): Promise<number> {
    const n = await this.source.readOnce(this.position, Math.min(length, this.size - this.position), into);
    this.position += n;
    return n;
  }

  async skip(blocks: number, bs: number): Promise<boolean> {
    // Past the end: dd seeks to the end and says it could not skip that far.
    this.position = Math.min(blocks * bs, this.size);
    return blocks * bs <= this.size;
  }

  passBadBlock(length: number): void {
    this.position = Math.min(this.size, this.position + length);
  }

  rewind(position: number): void {
    this.position = position;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** A stream: read front to back, nothing skipped without reading, nothing read twice. */
export class StreamInput implements DdInput {
  readonly size = undefined;
  constructor(readonly source: StreamSource) {}

  get name(): string {
    return this.source.name;
  }

  get position(): number {
    return this.source.position;
  }

  readOnce(into: Buffer, length = into.length): Promise<number> {
    return this.source.readOnce(into, length);
  }

  /** As GNU dd skips a pipe: `blocks` reads of up to `bs`, each one a block however short, stopping at the end. */
  async skip(blocks: number, bs: number, fullblock: boolean): Promise<boolean> {
    const scratch = Buffer.allocUnsafe(bs);
    for (let left = blocks; left > 0; left--) {
      const n = fullblock ? await readFull(this, scratch, bs) : await this.readOnce(scratch, bs);
      if (n === 0) return false;
    }
    // Short reads skipped fewer bytes than asked: GNU dd warns about that too.
    return this.position >= blocks * bs;
  }

  passBadBlock(): void {}

  rewind(): void {}

  close(): Promise<void> {
    return this.source.close();
  }
}

/** if= as dd reads it: "-" and streams front to back, files and devices at offsets. */
export async function openDdInput(path: string, direct: boolean, signal: AbortSignal | undefined): Promise<DdInput> {
  if (await isStream(path)) return new StreamInput(await StreamSource.open(path, { signal }));
  return new FileInput(await openSource(path, { direct }));
}
