/** What every partition-table reader returns; `parts --json` prints it as is (plus filesystem fields). */

export type PartitionScheme = "mbr" | "gpt" | "none";

export interface Partition {
  /** Linux numbering: MBR primaries 1-4, logicals from 5; GPT entry index + 1. */
  number: number;
  /** First sector, in units of the table's sector size. */
  start: number;
  sectors: number;
  /** Byte offset and length inside the image. */
  offset: number;
  length: number;
  /** MBR: two hex digits ("83"); GPT: the type GUID in upper case. */
  type: string;
  typeName: string;
  bootable: boolean;
  /** An MBR extended partition: it holds logical partitions, not a filesystem. */
  container: boolean;
  /** GPT partition name; null for MBR. */
  name: string | null;
  /** GPT partition GUID; null for MBR. */
  uuid: string | null;
  /** GPT only: attribute bits as sfdisk --json names them ("RequiredPartition", "LegacyBIOSBootable", "GUID:63"). */
  attributes?: string[];
}

export interface PartitionTable {
  scheme: PartitionScheme;
  sectorSize: number;
  /** MBR disk signature ("0x5eed0001") or GPT disk GUID. */
  id: string | null;
  partitions: Partition[];
  /** Problems found and worked around: shown to the user, never silently dropped. */
  warnings: string[];
}
