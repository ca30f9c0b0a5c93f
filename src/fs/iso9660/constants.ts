/** Numbers ECMA-119 fixes, shared by the reader and the writer. */

/** Logical sector and block size of every ISO 9660 image platter reads or writes. */
export const SECTOR_SIZE = 2048;

/** Sectors 0-15 are the system area (boot code, an isohybrid MBR/GPT); descriptors start at 16. */
export const SYSTEM_AREA_SECTORS = 16;
export const FIRST_DESCRIPTOR_SECTOR = 16;

/** "CD001": the standard identifier of every volume descriptor. */
export const STANDARD_ID = "CD001";

/**
 * Largest extent one directory record can describe: the 32-bit data length
 * rounded down to whole sectors, so the next section of a multi-extent file
 * starts on a sector boundary (what libisofs and genisoimage use).
 */
export const MAX_EXTENT_BYTES = 0xfffff800;

/** A directory record's length is one byte, and must be even (ECMA-119 9.1.1). */
export const MAX_DIRECTORY_RECORD = 254;

/** ECMA-119 6.8.2.1: the plain directory hierarchy has at most 8 levels, the root being level 1. */
export const MAX_ISO_DEPTH = 8;
