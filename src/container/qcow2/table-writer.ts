/**
 * The L1 and L2 tables of an image being written. Every change goes to the
 * file at once (write-through: an L2 table in memory is never ahead of the
 * one on disk once its job is done), in the order that keeps the file
 * readable: a new L2 table (zeros) before the L1 entry pointing at it,
 * data before the L2 entries pointing at it (the callers' part).
 *
 * Work on one L2 table is serialised (withTable): an entry is never read
 * while a write of it is under way, so two writes to one cluster cannot
 * both find it unallocated.
 */
import { LruCache } from "../../util/lru.js";
import type { Allocator } from "./allocator.js";
import { decodeL1Entry, encodeL1Entry, encodeL2Entry, type L2EntryInit } from "./entries.js";
import type { ImageFile } from "./image-file.js";
import type { Qcow2Layout } from "./layout.js";

/** L2 tables kept in memory (they are also always on disk). */
const TABLES_CACHED = 64;

export class TableWriter {
  private readonly tables = new LruCache<number, Buffer>(TABLES_CACHED);
  private readonly turns = new Map<number, Promise<void>>();

  constructor(
    private readonly file: ImageFile,
    private readonly layout: Qcow2Layout,
    /** The whole L1 table (replaced when the disk grows past it). */
    public l1: Buffer,
    private readonly allocator: Allocator,
  ) {}

  /** L1 entry `index` names an L2 table, or a job on it is under way (which may be creating it). */
  inUse(index: number): boolean {
    return decodeL1Entry(this.l1, index).l2Offset !== 0 || this.turns.has(index);
  }

  /**
   * Run `job` on the L2 table of L1 entry `index` once every earlier job on
   * it is done; `create`: make the table if it is missing (else the job gets
   * undefined). `offset` is where the table lies in the file.
   */
  async withTable<T>(index: number, create: boolean, job: (table: Buffer | undefined, offset: number) => Promise<T>): Promise<T> {
    const previous = this.turns.get(index) ?? Promise.resolve();
    let release = () => {};
    const turn = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
    this.turns.set(index, turn);
    await previous;
    try {
      const { clusterSize, header } = this.layout;
      let offset = decodeL1Entry(this.l1, index).l2Offset;
      let table = this.tables.get(index);
      if (!table && offset !== 0) table = this.tables.set(index, await this.file.readAt(offset, clusterSize));
      if (!table && create) {
        offset = this.allocator.clusters(1);
        table = Buffer.alloc(clusterSize);
        await this.file.writeAt(offset, table);
        encodeL1Entry(this.l1, index, offset);
        await this.file.writeAt(header.l1TableOffset + index * 8, Buffer.from(this.l1.subarray(index * 8, index * 8 + 8)));
        this.tables.set(index, table);
      }
      return await job(table, offset);
    } finally {
      release();
      await turn;
      if (this.turns.get(index) === turn) this.turns.delete(index);
    }
  }

  /** Change entry `entryIndex` of `table` in memory, noting it in `changed` for writeEntries. */
  setEntry(table: Buffer, entryIndex: number, entry: L2EntryInit, changed: number[]): void {
    encodeL2Entry(table, entryIndex, entry, this.layout);
    changed.push(entryIndex);
  }

  /** Write the changed entries of the table at `tableOffset`, a contiguous run at a time. */
  async writeEntries(table: Buffer, tableOffset: number, changed: number[]): Promise<void> {
    const bytes = this.layout.l2EntryBytes;
    changed.sort((a, b) => a - b);
    for (let i = 0; i < changed.length; ) {
      let j = i + 1;
      while (j < changed.length && (changed[j] as number) <= (changed[j - 1] as number) + 1) j++;
      const first = changed[i] as number;
      const last = changed[j - 1] as number;
      await this.file.writeAt(tableOffset + first * bytes, Buffer.from(table.subarray(first * bytes, (last + 1) * bytes)));
      i = j;
    }
  }

  /** Resolves when no job on any table is under way. */
  async idle(): Promise<void> {
    while (this.turns.size > 0) await Promise.all(this.turns.values());
  }
}
