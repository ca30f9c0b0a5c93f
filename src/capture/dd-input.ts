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
import { isStream, StreamSource } from "../io/stream-source.js";

export interface DdInput {
  readonly name: string;
  /** The size of a file or device; undefined for a stream. */
  readonly size: number | undefined;
  /** Bytes from the start of the input to the next read. */
  readonly position: number;
  /** One read(2) of at most `length` bytes at the position; 0 at the end. */
  read(into: Buffer, length: number): Promise<number>;
  /**
   * Skip `blocks` blocks of `bs` bytes before the copy. Returns the blocks
   * left unskipped at the end of the input (dd then warns).
   */
  skip(blocks: number, bs: number, fullblock: boolean): Promise<{ left: number; short: boolean }>;
  /** After a read error: move past `length` bytes. False where the input cannot move (a stream). */
  passBadBlock(length: number): boolean;
  /** Where a read error cannot be passed: back to `position` (a file only; see runDd's iflag=fullblock). */
  rewind(position: number): void;
  close(): Promise<void>;
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

  async read(into: Buffer, length: number): Promise<number> {
    const n = await this.source.readOnce(this.position, Math.min(length, this.size - this.position), into);
    this.position += n;
    return n;
  }

  async skip(blocks: number, bs: number): Promise<{ left: number; short: boolean }> {
    const wanted = blocks * bs;
    this.position = Math.min(wanted, this.size);
    // Past the end: dd seeks to the end and says it could not skip that far.
    return { left: wanted > this.size ? Math.floor((wanted - this.size) / bs) : 0, short: wanted > this.size };
  }

  passBadBlock(length: number): boolean {
    this.position = Math.min(this.size, this.position + length);
    return true;
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

  read(into: Buffer, length: number): Promise<number> {
    return this.source.readOnce(into, length);
  }

  /** As GNU dd skips a pipe: `blocks` reads of up to `bs`, each one a block however short, stopping at the end. */
  async skip(blocks: number, bs: number, fullblock: boolean): Promise<{ left: number; short: boolean }> {
    const scratch = Buffer.allocUnsafe(bs);
    let left = blocks;
    while (left > 0) {
      const n = fullblock ? await readBlock(this, scratch, bs) : await this.read(scratch, bs);
      if (n === 0) break;
      left--;
    }
    return { left, short: left > 0 || this.position < blocks * bs };
  }

  passBadBlock(): boolean {
    return false;
  }

  rewind(): void {}

  close(): Promise<void> {
    return this.source.close();
  }
}

/** iflag=fullblock: reads until `length` bytes or the end of the input. */
export async function readBlock(input: DdInput, into: Buffer, length: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await input.read(into.subarray(done), length - done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** if= as dd reads it: "-" and streams front to back, files and devices at offsets. */
export async function openDdInput(path: string, direct: boolean, signal: AbortSignal | undefined): Promise<DdInput> {
  if (await isStream(path)) return new StreamInput(await StreamSource.open(path, { signal }));
  return new FileInput(await openSource(path, { direct }));
}
