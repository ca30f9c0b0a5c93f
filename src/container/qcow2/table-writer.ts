/**
 * The L1 and L2 tables of an image being written. A new L2 table (zeros)
 * is in the file before the L1 entry pointing at it. L2 entries change in
 * memory, after the data they point at is in the file (the callers'
 * part), and are written back a table's changed run at a time: at every
 * flush, and whenever more than a few tables hold unwritten changes. A
 * table with changes not yet on disk stays in memory ("pinned"), so it is
 * never read back stale. A crash can thus lose entries written since the
 * last flush, never make one point at bytes not yet written; a capture's
 * mapfile only claims what a flush made durable.
 *
 * Work on one L2 table is serialised (withTable): an entry is never read
 * while a job that may change it is under way, so two writes to one cluster
 * cannot both find it unallocated.
 */
import { LruCache } from "../../util/lru.js";
import type { Allocator } from "./allocator.js";
import { decodeL1Entry, encodeL1Entry, encodeL2Entry, type L2EntryInit } from "./entries.js";
import type { ImageFile } from "./image-file.js";
import type { Qcow2Layout } from "./layout.js";

/** Clean L2 tables kept in memory. */
const TABLES_CACHED = 64;
/** Tables with changes not yet written, before the oldest is written back. */
const MAX_PINNED = 16;

/** A table whose changes [from, to) (entry indexes) are not in the file yet, or are being written. */
interface Pinned {
  table: Buffer;
  offset: number;
  from: number;
  to: number;
  writing?: Promise<void>;
}

export class TableWriter {
  private readonly tables = new LruCache<number, Buffer>(TABLES_CACHED);
  private readonly pinned = new Map<number, Pinned>();
  private readonly turns = new Map<number, Promise<void>>();
  private readonly writeBacks = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

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
   * undefined).
   */
  async withTable<T>(index: number, create: boolean, job: (table: Buffer | undefined) => Promise<T>): Promise<T> {
    const previous = this.turns.get(index) ?? Promise.resolve();
    let release = () => {};
    const turn = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
    this.turns.set(index, turn);
    await previous;
    try {
      const { clusterSize, header } = this.layout;
      const offset = decodeL1Entry(this.l1, index).l2Offset;
      let table = this.pinned.get(index)?.table ?? this.tables.get(index);
      if (!table && offset !== 0) table = this.tables.set(index, await this.file.readAt(offset, clusterSize));
      if (!table && create) {
        const created = this.allocator.clusters(1);
        table = Buffer.alloc(clusterSize);
        await this.file.writeAt(created, table);
        encodeL1Entry(this.l1, index, created);
        await this.file.writeAt(header.l1TableOffset + index * 8, Buffer.from(this.l1.subarray(index * 8, index * 8 + 8)));
        this.tables.set(index, table);
      }
      return await job(table);
    } finally {
      release();
      await turn;
      if (this.turns.get(index) === turn) this.turns.delete(index);
    }
  }

  /**
   * Change entry `entryIndex` of the table of L1 entry `index` (inside its
   * job, once the data the entry points at is in the file).
   */
  setEntry(index: number, table: Buffer, entryIndex: number, entry: L2EntryInit): void {
    encodeL2Entry(table, entryIndex, entry, this.layout);
    let pin = this.pinned.get(index);
    if (!pin) {
      pin = { table, offset: decodeL1Entry(this.l1, index).l2Offset, from: entryIndex, to: entryIndex + 1 };
      this.pinned.set(index, pin);
      this.tables.delete(index);
      if (this.pinned.size > MAX_PINNED) this.writeBack(this.pinned.keys().next().value as number);
    } else if (pin.from >= pin.to) {
      pin.from = entryIndex;
      pin.to = entryIndex + 1;
    } else {
      pin.from = Math.min(pin.from, entryIndex);
      pin.to = Math.max(pin.to, entryIndex + 1);
    }
  }

  /** Resolves when no job on any table is under way and every changed entry is in the file. */
  async idle(): Promise<void> {
    while (this.turns.size > 0) await Promise.all(this.turns.values());
    for (const index of [...this.pinned.keys()]) this.writeBack(index);
    while (this.writeBacks.size > 0) await Promise.all(this.writeBacks);
    if (this.failure) throw this.failure.error;
  }

  /** Write the changed run of a pinned table (after any write of it still under way); unpin it once clean. */
  private writeBack(index: number): void {
    const pin = this.pinned.get(index) as Pinned;
    const bytes = this.layout.l2EntryBytes;
    const previous = pin.writing;
    const writing: Promise<void> = (async () => {
      await previous;
      if (pin.from >= pin.to) return;
      const { from, to } = pin;
      pin.from = pin.to = 0;
      await this.file.writeAt(pin.offset + from * bytes, Buffer.from(pin.table.subarray(from * bytes, to * bytes)));
    })();
    pin.writing = writing;
    this.writeBacks.add(writing);
    writing
      .then(() => {
        // Changed again meanwhile, or written again after this: it stays pinned.
        if (pin.writing === writing && pin.from >= pin.to) {
          this.pinned.delete(index);
          this.tables.set(index, pin.table);
        }
      })
      .catch((error) => {
        this.failure ??= { error };
      })
      .finally(() => this.writeBacks.delete(writing));
  }
}
