/** `sfdisk --json` as the reference for partition tables, and the comparison every table test makes. */
import assert from "node:assert/strict";
import type { PartitionTable } from "../../src/partition/types.js";
import { run } from "./run.js";

interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
  uuid?: string;
  name?: string;
  attrs?: string;
}
export interface SfdiskTable {
  label: string;
  id: string;
  sectorsize: number;
  partitions: SfdiskPartition[];
}

export async function sfdiskJson(path: string): Promise<SfdiskTable> {
  const r = await run("sfdisk", ["--json", path]);
  if (r.code !== 0) throw new Error(`sfdisk --json ${path}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { partitiontable: SfdiskTable }).partitiontable;
}

/** Every field sfdisk --json prints, in platter's shape. */
export function assertMatchesSfdisk(table: PartitionTable, sfdisk: SfdiskTable): void {
  assert.equal(table.scheme, sfdisk.label === "dos" ? "mbr" : sfdisk.label);
  assert.equal(table.sectorSize, sfdisk.sectorsize);
  assert.equal(table.id, sfdisk.id);
  const expected = sfdisk.partitions.map((p) => {
    const number = Number(/(\d+)$/.exec(p.node)?.[1]);
    return table.scheme === "mbr"
      ? { number, start: p.start, sectors: p.size, type: Number.parseInt(p.type, 16), bootable: p.bootable ?? false }
      : { number, start: p.start, sectors: p.size, type: p.type, uuid: p.uuid, name: p.name ?? "", attrs: p.attrs ?? "" };
  });
  const actual = table.partitions.map((p) =>
    table.scheme === "mbr"
      ? { number: p.number, start: p.start, sectors: p.sectors, type: Number.parseInt(p.type, 16), bootable: p.bootable }
      : { number: p.number, start: p.start, sectors: p.sectors, type: p.type, uuid: p.uuid, name: p.name, attrs: (p.attributes ?? []).join(" ") },
  );
  assert.deepEqual(actual, expected);
  for (const p of table.partitions) {
    assert.equal(p.offset, p.start * table.sectorSize);
    assert.equal(p.length, p.sectors * table.sectorSize);
  }
}

