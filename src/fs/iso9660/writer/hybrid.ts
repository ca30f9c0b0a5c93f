/**
 * `platter iso --hybrid`: the system area of an ISO that is also a disk
 * image, so the same file boots from a USB stick. A GPT (primary in sectors
 * 1-33 of the 32 KiB system area, backup at the end of the image) with two
 * partitions: the ISO 9660 data as "Microsoft basic data" and the EFI boot
 * image as the EFI system partition; a protective MBR in sector 0. UEFI
 * firmware boots from the ESP. With `hybridMbr` (isolinux's isohdpfx.bin)
 * the MBR also gets boot code that BIOSes run, pointed at the El Torito BIOS
 * image as `xorriso -isohybrid-mbr` does.
 *
 * Unlike xorriso's -isohybrid-gpt-basdat, the partitions do not overlap the
 * GPT or each other (the EFI image is laid out last), so `sgdisk -v` finds
 * no problem.
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { UsageError } from "../../../errors.js";
import { encodeGptEntries, encodeGptHeader, GPT_DEFAULT_ENTRY_COUNT, GPT_ENTRY_SIZE, type GptEntry } from "../../../partition/gpt.js";
import { encodeMbr, GPT_PROTECTIVE_TYPE } from "../../../partition/mbr.js";
import { SECTOR_SIZE, SYSTEM_AREA_SECTORS } from "../constants.js";
import type { ImageLayout } from "./layout.js";
import type { FileData, ImagePlan } from "./plan.js";

const LBA = 512;
const PER_BLOCK = SECTOR_SIZE / LBA;
const ENTRY_ARRAY_LBAS = (GPT_DEFAULT_ENTRY_COUNT * GPT_ENTRY_SIZE) / LBA;
/** Backup entries and header: 33 LBAs, rounded up to whole ISO blocks. */
const TAIL_BLOCKS = Math.ceil((ENTRY_ARRAY_LBAS + 1) / PER_BLOCK);
/** Images end on a 1 MiB boundary: whole cylinders for BIOSes that think in CHS, like isohybrid's. */
const ALIGN_BLOCKS = (1 << 20) / SECTOR_SIZE;
/** Where isohybrid MBR boot code reads the 512-byte LBA of the BIOS boot image (64-bit). */
const MBR_BOOT_IMAGE_LBA = 432;

const BASIC_DATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
const EFI_SYSTEM = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

export interface HybridOptions {
  /** Boot code for the MBR (the first 432 bytes are used), e.g. /usr/lib/ISOLINUX/isohdpfx.bin. */
  mbrBootCode?: Buffer;
}

/** A GUID derived from the image (reproducible with SOURCE_DATE_EPOCH), marked as version 4. */
function guidFor(seed: string): string {
  const b = createHash("sha256").update(seed).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex").toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class HybridSystemArea {
  readonly layoutOptions = { alignSectors: ALIGN_BLOCKS, tailSectors: TAIL_BLOCKS };

  constructor(private readonly options: HybridOptions = {}) {
    if (options.mbrBootCode && options.mbrBootCode.length < MBR_BOOT_IMAGE_LBA) {
      throw new UsageError(`MBR boot code of ${options.mbrBootCode.length} bytes is shorter than ${MBR_BOOT_IMAGE_LBA}`);
    }
  }

  /** The EFI image goes last, so the ISO partition and the ESP are two runs that do not overlap. */
  arrange(plan: ImagePlan): void {
    if (this.options.mbrBootCode && !plan.boot.some((b) => b.platform === "bios")) {
      throw new UsageError("--hybrid-mbr needs --bios-boot: the MBR boot code loads the El Torito BIOS image");
    }
    const efi = this.efiImage(plan);
    if (!efi) return;
    plan.files.splice(plan.files.indexOf(efi), 1);
    plan.files.push(efi);
  }

  private efiImage(plan: ImagePlan): FileData | undefined {
    return plan.boot.find((b) => b.platform === "efi")?.data;
  }

  build(plan: ImagePlan, layout: ImageLayout): { systemArea: Buffer; tail: Buffer } {
    const totalLbas = layout.volumeSpaceSize * PER_BLOCK;
    const seed = `${plan.options.volumeId}\0${plan.options.volumeTime}\0${totalLbas}`;
    // The usual first usable LBA (after 32 sectors of entries); the ISO partition starts at block 16.
    const firstUsable = 2 + ENTRY_ARRAY_LBAS;
    const isoStart = SYSTEM_AREA_SECTORS * PER_BLOCK;
    const lastUsable = totalLbas - ENTRY_ARRAY_LBAS - 2;
    const efi = this.efiImage(plan);
    const dataEnd = layout.dataEnd * PER_BLOCK;
    const isoEnd = efi ? efi.block * PER_BLOCK : dataEnd;
    const entries: GptEntry[] = [
      { typeGuid: BASIC_DATA, uniqueGuid: guidFor(`${seed}\0iso`), firstLba: isoStart, lastLba: isoEnd - 1, attributes: 0n, name: "ISO9660" },
    ];
    if (efi) {
      const efiLbas = Math.ceil(efi.size / LBA);
      entries.push({ typeGuid: EFI_SYSTEM, uniqueGuid: guidFor(`${seed}\0esp`), firstLba: isoEnd, lastLba: isoEnd + efiLbas - 1, attributes: 0n, name: "EFI System" });
    }
    const array = encodeGptEntries(entries);
    const diskGuid = guidFor(`${seed}\0disk`);
    const header = (current: number, backup: number, entriesLba: number) =>
      encodeGptHeader({
        currentLba: current,
        backupLba: backup,
        firstUsableLba: firstUsable,
        lastUsableLba: lastUsable,
        diskGuid,
        entriesLba,
        entryCount: GPT_DEFAULT_ENTRY_COUNT,
        entrySize: GPT_ENTRY_SIZE,
        entriesCrc32: crc32(array),
      });

    const bootCode = this.bootCode(plan);
    const mbr = encodeMbr({
      bootCode,
      diskSignature: Number.parseInt(diskGuid.slice(0, 8), 16),
      entries: [
        {
          // Some BIOSes boot only a disk with an active partition: mark it when there is BIOS boot code.
          status: bootCode ? 0x80 : 0x00,
          type: GPT_PROTECTIVE_TYPE,
          startLba: 1,
          sectors: Math.min(totalLbas - 1, 0xffffffff),
        },
      ],
    });
    const systemArea = Buffer.alloc(SYSTEM_AREA_SECTORS * SECTOR_SIZE);
    mbr.copy(systemArea, 0);
    header(1, totalLbas - 1, 2).copy(systemArea, LBA);
    array.copy(systemArea, 2 * LBA);
    const tail = Buffer.concat([array, header(totalLbas - 1, 1, totalLbas - 1 - ENTRY_ARRAY_LBAS)]);
    return { systemArea, tail };
  }

  /** isohybrid boot code with the BIOS image's 512-byte LBA at byte 432, as xorriso -isohybrid-mbr writes it. */
  private bootCode(plan: ImagePlan): Buffer | undefined {
    if (!this.options.mbrBootCode) return undefined;
    const code = Buffer.alloc(440);
    this.options.mbrBootCode.copy(code, 0, 0, MBR_BOOT_IMAGE_LBA);
    const bios = plan.boot.find((b) => b.platform === "bios");
    code.writeBigUInt64LE(BigInt((bios?.data.block ?? 0) * PER_BLOCK), MBR_BOOT_IMAGE_LBA);
    return code;
  }
}
