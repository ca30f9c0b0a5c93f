/**
 * A block table (a VHD or VHDX BAT, a VDI block map) read a page at a time
 * and kept in an LRU cache, so a 64 TiB VHDX's 16 MiB table never sits in
 * memory whole, and a lookup whose page is cached answers synchronously.
 */
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";

/** Bytes per page: 16384 four-byte entries. */
const PAGE_BYTES = 64 * 1024;
/** Pages kept: 4 MiB of table. */
const PAGES_KEPT = 64;

export class PagedTable {
  private readonly pages = new LruCache<number, Buffer>(PAGES_KEPT);
  private readonly loading = new Map<number, Promise<Buffer>>();
  readonly entriesPerPage: number;

  constructor(
    private readonly file: BlockSource,
    /** Where the table starts in the file. */
    readonly offset: number,
    readonly entries: number,
    readonly entryBytes: number,
  ) {
    this.entriesPerPage = PAGE_BYTES / entryBytes;
  }

  /** Entry `index` decoded by `decode(page, byteOffset)`; synchronous when its page is cached. */
  entry<T>(index: number, decode: (page: Buffer, at: number) => T): T | Promise<T> {
    const pageIndex = Math.floor(index / this.entriesPerPage);
    const at = (index % this.entriesPerPage) * this.entryBytes;
    const page = this.pages.get(pageIndex);
    if (page) return decode(page, at);
    return this.load(pageIndex).then((loaded) => decode(loaded, at));
  }

  /** Every entry in order, a page at a time (the one full pass an opener makes to check the table). */
  async *scan(): AsyncGenerator<{ page: Buffer; first: number; count: number }> {
    for (let first = 0; first < this.entries; first += this.entriesPerPage) {
      const page = await this.readPage(first / this.entriesPerPage);
      yield { page, first, count: Math.min(this.entriesPerPage, this.entries - first) };
    }
  }

  private load(pageIndex: number): Promise<Buffer> {
    let pending = this.loading.get(pageIndex);
    if (!pending) {
      pending = this.readPage(pageIndex).then(
        (page) => {
          this.loading.delete(pageIndex);
          return this.pages.set(pageIndex, page);
        },
        (err: unknown) => {
          this.loading.delete(pageIndex);
          throw err;
        },
      );
      this.loading.set(pageIndex, pending);
    }
    return pending;
  }

  private readPage(pageIndex: number): Promise<Buffer> {
    const first = pageIndex * this.entriesPerPage;
    const count = Math.min(this.entriesPerPage, this.entries - first);
    return this.file.read(this.offset + first * this.entryBytes, count * this.entryBytes);
  }
}
