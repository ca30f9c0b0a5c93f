/**
 * The decoded bytes of an indexed gzip file, with random access: a read
 * decodes the spans it touches (span-decoder.ts) through a UnitReader (LRU
 * of decoded spans, decoding ahead of sequential readers).
 *
 * The reader's units are pieces of spans: a span is one piece, except a
 * large one (highly compressible data: deflate blocks of 4 MiB and more),
 * which is read a piece at a time by a SpanCursor kept between reads, so no
 * read holds or inflates more than it needs.
 */
import { availableParallelism } from "node:os";
import { checkReadBeforeDamage, describeDamage } from "../damage.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerSource } from "../format.js";
import { UnitReader } from "../unit-reader.js";
import { InTurn } from "../../util/in-turn.js";
import type { AccessIndex } from "./access-index.js";
import { BufferPool } from "../../util/buffer-pool.js";
import { Limiter } from "../../util/limiter.js";
import { decodeSpan, decodeSpanInto, decodesInto, LARGE_SPAN, PIECE, SpanCursor } from "./span-decoder.js";

/** Large spans being read at once, each with its own cursor. */
const MAX_CURSORS = 4;

interface CursorSlot {
  span: number;
  cursor?: SpanCursor;
  turns: InTurn;
  busy: number;
}

/** Decoded spans kept (read-ahead included). */
const CACHE_BYTES = 16 << 20;
/** Memory kept for the compressed bytes of spans inflated straight into a reader's buffer. */
const INPUT_POOL_BYTES = 8 << 20;

/** How the index came to be, for describe(). */
export type GzipLayout = "platter" | "bgzf" | "stream";
export type IndexOrigin = "headers" | "inflate pass" | "cache";

export class GzipSource implements ContainerSource {
  readonly format = "gzip";
  readonly seekable = true;
  readonly sectorSize = 512;
  readonly name: string;
  readonly size: number;
  private readonly reader: UnitReader;
  /** firstPiece[i]: the reader's unit where span i starts; firstPiece[count] is the number of units. */
  private readonly firstPiece: Uint32Array;
  private readonly spanOfPiece: Uint32Array;
  private readonly cursors: CursorSlot[] = [];
  /** Compressed spans on their way to being inflated into a reader's buffer. */
  private readonly inputs = new BufferPool(INPUT_POOL_BYTES);
  /** Spans inflating into readers' buffers at once: a read of the whole image must not hold all of its compressed bytes. */
  private readonly inflaters = new Limiter(2 * availableParallelism());

  constructor(
    private readonly source: BlockSource,
    readonly index: AccessIndex,
    private readonly layout: GzipLayout,
    private readonly origin: IndexOrigin,
  ) {
    this.name = source.name;
    this.size = index.size;
    this.firstPiece = new Uint32Array(index.count + 1);
    for (let i = 0; i < index.count; i++) this.firstPiece[i + 1] = (this.firstPiece[i] as number) + this.piecesOf(i);
    const pieces = this.firstPiece[index.count] as number;
    this.spanOfPiece = new Uint32Array(pieces);
    for (let i = 0; i < index.count; i++) this.spanOfPiece.fill(i, this.firstPiece[i], this.firstPiece[i + 1]);
    const units = {
      count: pieces,
      start: (p: number) => (p < pieces ? this.pieceStart(p) : index.size),
      find: (offset: number) => {
        const span = index.find(offset);
        return (this.firstPiece[span] as number) + Math.floor((offset - index.decodedOf(span)) / this.pieceLength(span));
      },
      decode: async (p: number, memory: Buffer) => {
        const out = memory.subarray(0, units.start(p + 1) - units.start(p));
        const into = units.decodeInto(p, out);
        if (!into) return this.decodePiece(p);
        await into;
        return out;
      },
      decodeInto: (p: number, out: Buffer) => {
        const span = this.spanOfPiece[p] as number;
        if (this.piecesOf(span) > 1 || !decodesInto(index, span)) return undefined;
        return this.inflaters.run(() => decodeSpanInto(this.source, index, span, out, this.inputs));
      },
      isZeros: (p: number) => index.spanIsZeros(this.spanOfPiece[p] as number),
    };
    this.reader = new UnitReader(units, this.name, this.size, {
      cacheBytes: CACHE_BYTES,
      largestUnit: Math.min(index.largestSpan(), LARGE_SPAN),
      readAhead: availableParallelism(),
    });
  }

  private piecesOf(span: number): number {
    const length = this.index.spanEnd(span) - this.index.decodedOf(span);
    return length > LARGE_SPAN ? Math.ceil(length / PIECE) : 1;
  }

  private pieceLength(span: number): number {
    return this.piecesOf(span) > 1 ? PIECE : Number.POSITIVE_INFINITY;
  }

  private pieceStart(p: number): number {
    const span = this.spanOfPiece[p] as number;
    return this.index.decodedOf(span) + (p - (this.firstPiece[span] as number)) * PIECE;
  }

  private async decodePiece(p: number): Promise<Buffer> {
    const span = this.spanOfPiece[p] as number;
    if (this.piecesOf(span) === 1) return decodeSpan(this.source, this.index, span);
    const k = p - (this.firstPiece[span] as number);
    const slot = this.cursorSlot(span);
    slot.busy++;
    try {
      let piece: Buffer | undefined;
      await slot.turns.run(async () => {
        // A cursor past this piece cannot go back: start the span again.
        if (!slot.cursor || slot.cursor.next > k) {
          slot.cursor?.close();
          slot.cursor = await SpanCursor.open(this.source, this.index, span);
        }
        while (slot.cursor.next < k) await slot.cursor.take();
        piece = await slot.cursor.take();
      });
      return piece as Buffer;
    } finally {
      slot.busy--;
    }
  }

  /** The cursor slot of `span`, made the most recent; the oldest idle one goes when there are too many. */
  private cursorSlot(span: number): CursorSlot {
    const at = this.cursors.findIndex((c) => c.span === span);
    const slot = at >= 0 ? (this.cursors.splice(at, 1)[0] as CursorSlot) : { span, turns: new InTurn(), busy: 0 };
    this.cursors.push(slot);
    if (this.cursors.length > MAX_CURSORS) {
      const idle = this.cursors.findIndex((c) => c.busy === 0 && c !== slot);
      if (idle >= 0) this.cursors.splice(idle, 1)[0]?.cursor?.close();
    }
    return slot;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkReadBeforeDamage(this.name, "gzip", this.index.damage, this.size, offset, length);
    return this.reader.read(offset, length, into);
  }

  /** Spans the index saw decode to zeros are holes. */
  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    return this.reader.dataRanges(offset, length);
  }

  describe(): Record<string, unknown> {
    const index = this.index;
    return {
      format: "gzip",
      seekable: true,
      layout: this.layout,
      members: index.members,
      accessPoints: index.count,
      indexedBy: this.origin,
      ...(this.layout === "platter" ? { complete: index.complete } : {}),
      ...(index.damage ? { damage: describeDamage(index.damage) } : {}),
      ...(this.layout === "platter"
        ? {}
        : { convert: "platter convert to .gz writes members that say their size: random access with no pass over the file" }),
    };
  }

  /** The source below belongs to whoever opened it. */
  async close(): Promise<void> {
    for (const slot of this.cursors.splice(0)) slot.cursor?.close();
    this.inputs.clear();
  }
}
