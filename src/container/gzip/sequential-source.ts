/**
 * A gzip file read front to back with Node's zlib, for where no index can
 * be built (the system zlib cannot be loaded through koffi): one pass at open
 * counts the decoded bytes; a read then decodes forward from where the last
 * one stopped, and one that goes backward starts over from the beginning.
 * Memory stays at a few chunks whatever the image; random access is slow.
 */
import { once } from "node:events";
import { createGunzip } from "node:zlib";
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { checkRange, targetBuffer } from "../../io/bounds.js";
import { InTurn } from "../../util/in-turn.js";
import type { ContainerSource } from "../format.js";

const CHUNK = 256 << 10;

/** Decoded chunks of the whole file, in order; an error (damage) ends them. */
async function* gunzipChunks(source: BlockSource): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({ chunkSize: CHUNK });
  let stopped = false;
  const feed = async () => {
    for (let at = 0; at < source.size && !stopped; at += CHUNK) {
      const buf = await source.read(at, Math.min(CHUNK, source.size - at));
      if (!gunzip.write(buf)) await once(gunzip, "drain");
    }
    gunzip.end();
  };
  feed().catch((err: Error) => gunzip.destroy(err));
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } finally {
    stopped = true;
    gunzip.destroy();
  }
}

class Cursor {
  /** Decoded offset of `chunk`. */
  start = 0;
  chunk: Buffer = Buffer.alloc(0);
  private readonly chunks: AsyncGenerator<Buffer>;

  constructor(source: BlockSource) {
    this.chunks = gunzipChunks(source);
  }

  /** Move to the next chunk; false at the end. */
  async advance(): Promise<boolean> {
    const next = await this.chunks.next();
    if (next.done) return false;
    this.start += this.chunk.length;
    this.chunk = next.value;
    return true;
  }

  async close(): Promise<void> {
    await this.chunks.return(undefined);
  }
}

export class SequentialGzipSource implements ContainerSource {
  readonly format = "gzip";
  readonly seekable = false;
  readonly sectorSize = 512;
  readonly name: string;
  private cursor: Cursor | undefined;
  private readonly turns = new InTurn();

  private constructor(
    private readonly source: BlockSource,
    readonly size: number,
    private readonly damage: string | undefined,
  ) {
    this.name = source.name;
  }

  /** One pass to learn the size (and check every CRC); damage ends the image where it is. */
  static async open(source: BlockSource, onWarning?: (message: string) => void): Promise<SequentialGzipSource> {
    let size = 0;
    let damage: string | undefined;
    try {
      for await (const chunk of gunzipChunks(source)) size += chunk.length;
    } catch (err) {
      // zlib's errors (codes Z_DATA_ERROR, Z_BUF_ERROR...) are damage; an I/O error is not.
      if (!String((err as { code?: unknown }).code ?? "").startsWith("Z_")) throw err;
      damage = (err as Error).message;
      onWarning?.(`${source.name}: gzip data is damaged after ${size} decoded bytes (${damage}); only those are readable`);
    }
    return new SequentialGzipSource(source, size, damage);
  }

  /** Reads share one decoder, so they take turns. */
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    await this.turns.run(() => this.readInTurn(offset, out));
    return out;
  }

  private async readInTurn(offset: number, out: Buffer): Promise<void> {
    if (!this.cursor || offset < this.cursor.start) {
      await this.cursor?.close();
      this.cursor = new Cursor(this.source);
    }
    const cursor = this.cursor;
    let filled = 0;
    while (filled < out.length) {
      const end = cursor.start + cursor.chunk.length;
      if (offset + filled >= end) {
        if (!(await cursor.advance())) throw new CorruptImageError(`${this.name}: gzip data ends at ${end} decoded bytes, before offset ${offset + filled}`);
        continue;
      }
      const from = offset + filled - cursor.start;
      filled += cursor.chunk.copy(out, filled, from, Math.min(cursor.chunk.length, from + out.length - filled));
    }
  }

  describe(): Record<string, unknown> {
    return {
      format: "gzip",
      seekable: false,
      indexed: "none: the system zlib (libz.so.1) could not be loaded, so reads decode from the start",
      ...(this.damage ? { damage: this.damage } : {}),
      convert: "platter convert to .gz writes independent members that any platter reads with random access",
    };
  }

  async close(): Promise<void> {
    await this.cursor?.close();
    this.cursor = undefined;
  }
}
