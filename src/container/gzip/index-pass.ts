/**
 * One pass over a gzip file that gives no sizes in its headers (gzip, pigz,
 * `cat a.gz b.gz`): inflate everything once, with the system zlib, and note
 * an access point every `span` decoded bytes (zran.c's method, see
 * access-index.ts). zlib checks each member's CRC-32 and ISIZE on the way.
 *
 * Inflate runs with Z_NO_FLUSH (few calls, full speed) until a point is due,
 * then with Z_BLOCK, which returns at the next block boundary: a flood of
 * empty blocks costs one call, not one per block.
 *
 * Damage (truncation, a bad code, a CRC that does not match) ends the pass:
 * the index covers what came before it and says what happened.
 */
import type { BlockSource } from "../../io/block-source.js";
import { isAllZero } from "../../io/zeros.js";
import { AccessIndex, INNER, MEMBER } from "./access-index.js";
import { GzipInflater, Z_BLOCK, Z_BUF_ERROR, Z_NO_FLUSH, Z_OK, Z_STREAM_END } from "./libz.js";
import { isGzipMagic } from "./member-header.js";
import { warnTrailingBytes } from "./trailing-bytes.js";

const WINDOW = 32 << 10;
/** Input read per step; two halves of the native buffer alternate, the next read runs while inflate works. */
const INPUT_CHUNK = 1 << 20;
const OUTPUT_CHUNK = 256 << 10;
/** Start with an access point per MiB; AccessIndex.thin() widens it on large images. */
export const DEFAULT_SPAN = 1 << 20;

export interface IndexPassOptions {
  span?: number;
  onWarning?: (message: string) => void;
}

/** The index of `source`, a gzip file; undefined when the system zlib cannot be used here. */
export async function indexByInflating(source: BlockSource, options: IndexPassOptions = {}): Promise<AccessIndex | undefined> {
  const inflater = GzipInflater.open(2 * INPUT_CHUNK, WINDOW + OUTPUT_CHUNK);
  if (!inflater) return undefined;
  try {
    return await new IndexPass(source, inflater, options).run();
  } finally {
    inflater.close();
  }
}

class IndexPass {
  private readonly index: AccessIndex;
  /** Bytes of the file loaded into the input buffer so far. */
  private fed = 0;
  private half = 0;
  private nextRead: Promise<number> | undefined;
  /** Decoded bytes so far, and where the output buffer stands (its last WINDOW bytes before `pos` are the history). */
  private decoded = 0;
  private pos = 0;
  private memberStart = 0;
  private memberDecodedStart = 0;
  private lastPoint = 0;
  private lastKind: typeof MEMBER | typeof INNER = MEMBER;

  constructor(
    private readonly source: BlockSource,
    private readonly z: GzipInflater,
    private readonly options: IndexPassOptions,
  ) {
    this.index = new AccessIndex(options.span ?? DEFAULT_SPAN);
  }

  private get consumed(): number {
    return this.fed - this.z.availIn;
  }

  async run(): Promise<AccessIndex> {
    const index = this.index;
    index.add({ kind: MEMBER, decoded: 0, compressed: 0, bits: 0, zeros: true });
    index.members = 1;
    this.startRead();
    for (;;) {
      if (this.z.availIn === 0 && !(await this.refill())) {
        this.damaged(this.decoded, `truncated: the member at offset ${this.memberStart} ends at the end of the file (${this.fed} bytes)`);
        break;
      }
      if (this.pos === this.z.output.length) {
        this.z.output.copyWithin(0, this.pos - WINDOW, this.pos);
        this.pos = WINDOW;
      }
      const room = this.z.output.length - this.pos;
      this.z.setOutput(this.pos, room);
      const inBefore = this.z.availIn;
      const ret = await this.z.inflate(this.decoded - this.lastPoint >= index.span ? Z_BLOCK : Z_NO_FLUSH);
      const produced = room - this.z.availOut;
      if (produced > 0 && !isAllZero(this.z.output.subarray(this.pos, this.pos + produced))) index.sawData();
      this.decoded += produced;
      this.pos += produced;
      if (ret === Z_OK) {
        this.maybeAddPoint();
        continue;
      }
      if (ret === Z_STREAM_END) {
        if (!(await this.nextMember())) break;
        continue;
      }
      if (ret === Z_BUF_ERROR && (this.z.availIn === 0 || produced > 0 || this.z.availIn < inBefore)) continue;
      const message = this.z.message || `zlib error ${ret}`;
      if (/incorrect (data|length) check/.test(message)) {
        const what = message.includes("data") ? "CRC-32" : "length (ISIZE)";
        // Some byte of the member is wrong, and nothing says which: it is left out whole.
        this.damaged(this.memberDecodedStart, `the member at offset ${this.memberStart} fails its ${what} check`, this.memberStart, true);
      } else {
        this.damaged(this.decoded, `${message} near offset ${this.consumed}`);
      }
      break;
    }
    await this.nextRead?.catch(() => {});
    return index;
  }

  /** At a block boundary with a point due: note where, and the window before it. */
  private maybeAddPoint(): void {
    const type = this.z.dataType;
    if ((type & 0xc0) !== 0x80 || this.decoded - this.lastPoint < this.index.span) return;
    const window = Buffer.from(this.z.output.subarray(Math.max(0, this.pos - WINDOW), this.pos));
    this.index.add({ kind: INNER, decoded: this.decoded, compressed: this.consumed, bits: type & 7, window, zeros: true });
    this.lastPoint = this.decoded;
    this.lastKind = INNER;
  }

  /** A member ended (zlib checked its CRC and size): go on to the next one, or stop. */
  private async nextMember(): Promise<boolean> {
    const end = this.consumed;
    this.index.compressedEnd = end;
    this.index.size = this.decoded;
    if (end >= this.source.size) return false;
    const peek = await this.source.read(end, Math.min(3, this.source.size - end));
    if (!isGzipMagic(peek)) {
      await warnTrailingBytes(this.source, end, this.options.onWarning);
      return false;
    }
    this.z.reset();
    this.memberStart = end;
    this.memberDecodedStart = this.decoded;
    this.pos = 0;
    this.index.members++;
    // A span from an inner point must not run into this member; from a member point it may.
    if (this.lastKind === INNER || this.decoded - this.lastPoint >= this.index.span) {
      this.index.add({ kind: MEMBER, decoded: this.decoded, compressed: end, bits: 0, zeros: true });
      this.lastPoint = this.decoded;
      this.lastKind = MEMBER;
    }
    return true;
  }

  /**
   * Stop at damage: the image is what decoded before it. Cut inside a member
   * (truncation, a bad code), the last span's input runs to what was read;
   * cut at a member's start, it ends with the member before.
   */
  private damaged(size: number, message: string, compressedOffset = this.consumed, atMemberStart = false): void {
    const index = this.index;
    index.damage = { compressedOffset, message };
    index.truncate(size);
    index.endsAtMemberEnd = atMemberStart;
    index.compressedEnd = atMemberStart ? compressedOffset : Math.min(this.fed, this.source.size);
  }

  private startRead(): void {
    const length = Math.min(INPUT_CHUNK, this.source.size - this.fed);
    const into = this.z.input.subarray(this.half * INPUT_CHUNK, this.half * INPUT_CHUNK + length);
    this.nextRead = length > 0 ? this.source.read(this.fed, length, into).then(() => length) : Promise.resolve(0);
  }

  /** Hand inflate the half that was being read, and start reading the other. False at the end of the file. */
  private async refill(): Promise<boolean> {
    const length = await (this.nextRead as Promise<number>);
    if (length === 0) return false;
    this.z.setInput(this.half * INPUT_CHUNK, length);
    this.fed += length;
    this.half ^= 1;
    this.startRead();
    return true;
  }
}
