/**
 * A block group descriptor (struct ext4_group_desc): 32 bytes, or
 * s_desc_size (64) with the 64bit feature, whose high halves sit at 0x20.
 */
export interface GroupDescriptor {
  inodeTable: number;
  flags: number;
}

export const BG_INODE_UNINIT = 0x1;

export function decodeGroupDescriptor(b: Buffer, descSize: number): GroupDescriptor {
  let inodeTable = b.readUInt32LE(8);
  if (descSize >= 64) inodeTable += b.readUInt32LE(40) * 2 ** 32;
  return { inodeTable, flags: b.readUInt16LE(18) };
}
