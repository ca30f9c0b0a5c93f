/**
 * Gathers the SUSP entries of one directory record: its own system use area,
 * then each continuation area a CE entry points to. Bounded, so a corrupt or
 * looping CE chain ends in a CorruptImageError instead of a hang.
 */
import type { BlockSource } from "../../io/block-source.js";
import { CorruptImageError } from "../../errors.js";
import { SECTOR_SIZE } from "./constants.js";
import { decodeCe, decodeSuspEntries, type SuspEntry } from "./susp.js";

/** Continuation areas one record may chain (Linux allows 32 for symlinks). */
const MAX_CONTINUATIONS = 32;
/** A continuation area lies inside one block (SUSP 5.1; Linux and libarchive check it). */
const MAX_AREA = SECTOR_SIZE;

export async function readSuspArea(source: BlockSource, systemUse: Buffer, skip: number, where: string): Promise<SuspEntry[]> {
  const all: SuspEntry[] = [];
  let entries = decodeSuspEntries(systemUse.subarray(Math.min(skip, systemUse.length)), where);
  const seen = new Set<string>();
  for (let hops = 0; ; hops++) {
    let next: SuspEntry | undefined;
    for (const e of entries) {
      if (e.signature === "CE") next ??= e;
      else all.push(e);
    }
    if (!next) return all;
    if (hops >= MAX_CONTINUATIONS) throw new CorruptImageError(`${where}: more than ${MAX_CONTINUATIONS} SUSP continuation areas`);
    const ce = decodeCe(next, `${where}: CE entry`);
    const key = `${ce.block}:${ce.offset}`;
    if (seen.has(key)) throw new CorruptImageError(`${where}: SUSP continuation areas form a loop at block ${ce.block}`);
    seen.add(key);
    if (ce.length > MAX_AREA || ce.offset + ce.length > MAX_AREA) {
      throw new CorruptImageError(`${where}: SUSP continuation area (offset ${ce.offset}, ${ce.length} bytes) crosses its block`);
    }
    const area = await source.read(ce.block * SECTOR_SIZE + ce.offset, ce.length);
    entries = decodeSuspEntries(area, `${where}: continuation area at block ${ce.block}`);
  }
}
