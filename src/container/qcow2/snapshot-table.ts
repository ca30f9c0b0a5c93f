/**
 * The qcow2 snapshot table (docs/interop/qcow2.txt, "Snapshots"):
 * nb_snapshots variable-length entries, each naming an inactive L1 table.
 * platter reads the active L1 only; check counts what the snapshots hold.
 * Pure codec.
 */
import { CorruptImageError } from "../../errors.js";
import { decodeName } from "../../fs/names.js";
import { readUint64BE } from "../../util/uint64.js";

const FIXED = 40;
/** qemu's QCOW_MAX_SNAPSHOT_EXTRA_DATA. */
const MAX_EXTRA = 1024;

export interface SnapshotEntry {
  l1TableOffset: number;
  l1Size: number;
  id: string;
  name: string;
}

/** Decode `count` entries from `table` (which starts at byte `offset` of the file); returns them and the bytes they took. */
export function decodeSnapshotTable(table: Buffer, count: number, offset: number): { snapshots: SnapshotEntry[]; length: number } {
  const snapshots: SnapshotEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const where = `qcow2 snapshot ${i} (byte ${offset + at})`;
    if (at + FIXED > table.length) throw new CorruptImageError(`${where}: the snapshot table runs past the end of the file`);
    const idSize = table.readUInt16BE(at + 12);
    const nameSize = table.readUInt16BE(at + 14);
    const extra = table.readUInt32BE(at + 36);
    if (extra > MAX_EXTRA) throw new CorruptImageError(`${where}: ${extra} bytes of extra data; qemu allows ${MAX_EXTRA}`);
    const end = at + FIXED + extra + idSize + nameSize;
    if (end > table.length) throw new CorruptImageError(`${where}: the snapshot table runs past the end of the file`);
    const idStart = at + FIXED + extra;
    snapshots.push({
      l1TableOffset: readUint64BE(table, at, `${where}: l1_table_offset`),
      l1Size: table.readUInt32BE(at + 8),
      id: decodeName(table.subarray(idStart, idStart + idSize)),
      name: decodeName(table.subarray(idStart + idSize, end)),
    });
    at = Math.ceil(end / 8) * 8;
  }
  return { snapshots, length: at };
}
