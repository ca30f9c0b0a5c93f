/**
 * Assemble a directory's raw 32-byte slots into named entries: long-name
 * slots are kept only when their sequence is complete and every checksum
 * matches the short entry that follows (otherwise the 8.3 name is used, as
 * Linux and Windows do); deleted slots, "." and ".." are skipped; the
 * volume-label entry is reported apart.
 */
import { decodeCp437 } from "./codepage.js";
import {
  ATTR_VOLUME,
  decodeDirEntry,
  ENTRY_DELETED,
  ENTRY_END,
  type LongEntry,
  type ShortEntry,
  shortNameChecksum,
} from "./dir-entry.js";

export interface FatDirEntry {
  name: string;
  short: ShortEntry;
  /** Index of the short entry's slot in the directory, for identity. */
  slot: number;
}

export interface DecodedDirectory {
  entries: FatDirEntry[];
  /** The volume label entry, if this (root) directory has one. */
  volumeLabel: string | null;
}

function longName(slots: LongEntry[]): string | null {
  // slots arrive last-first: [n|0x40, n-1, ..., 1]
  const units: number[] = [];
  for (let i = slots.length - 1; i >= 0; i--) units.push(...slots[i].units);
  const end = units.indexOf(0);
  const used = end < 0 ? units : units.slice(0, end);
  if (used.length === 0) return null;
  return String.fromCharCode(...used);
}

export function decodeDirectory(data: Buffer, fat32: boolean): DecodedDirectory {
  const entries: FatDirEntry[] = [];
  let volumeLabel: string | null = null;
  let pending: LongEntry[] = [];
  for (let slot = 0; slot * 32 + 32 <= data.length; slot++) {
    const b = data.subarray(slot * 32, slot * 32 + 32);
    if (b[0] === ENTRY_END) break;
    if (b[0] === ENTRY_DELETED) {
      pending = [];
      continue;
    }
    const e = decodeDirEntry(b, fat32);
    if (e.kind === "long") {
      const prev = pending[pending.length - 1];
      if (e.last) {
        pending = e.order >= 1 && e.order <= 20 ? [e] : [];
      } else if (prev && e.order === prev.order - 1 && e.checksum === prev.checksum) {
        pending.push(e);
      } else {
        pending = [];
      }
      continue;
    }
    const slots = pending;
    pending = [];
    if (e.attr & ATTR_VOLUME) {
      if (!(e.attr & 0x10)) volumeLabel ??= decodeCp437(e.raw).replace(/ +$/, "") || null;
      continue;
    }
    if (e.name === "." || e.name === "..") continue;
    let name = e.name;
    const complete = slots.length > 0 && slots[slots.length - 1].order === 1;
    if (complete && slots[0].checksum === shortNameChecksum(e.raw)) name = longName(slots) ?? name;
    entries.push({ name, short: e, slot });
  }
  return { entries, volumeLabel };
}
