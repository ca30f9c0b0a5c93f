/**
 * A squashfs 4.0 image written from scratch, for shapes mksquashfs takes too
 * long to make: one directory of a million names (unsquashfs reads it back,
 * which the tests check). Metadata is zlib ("gzip"), 8 KiB blocks; every
 * entry names one empty regular file (as hard links would).
 */
import { deflateSync } from "node:zlib";

const METADATA_SIZE = 8192;
const NO_TABLE = 0xffffffffffffffffn;

/** Split `bytes` into metadata blocks, each compressed (or stored, when that is not smaller) after its 2-byte header. */
function metadataBlocks(bytes: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length || at === 0; at += METADATA_SIZE) {
    const raw = bytes.subarray(at, at + METADATA_SIZE);
    const packed = deflateSync(raw);
    const stored = packed.length >= raw.length;
    const header = Buffer.alloc(2);
    header.writeUInt16LE(stored ? 0x8000 | raw.length : packed.length);
    out.push(header, stored ? raw : packed);
  }
  return Buffer.concat(out);
}

/** The names of a directory of `count` entries, in the sorted order squashfs needs: "f0000000"... */
export function craftedNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `f${String(i).padStart(7, "0")}`);
}

export function craftDirectoryImage(names: string[], mtime = 1700000000): Buffer {
  // Inode table: the file (inode 1) at offset 0, then the root (inode 2) at offset 32, an extended
  // directory (its listing is longer than the 16 bits of a basic one).
  const inodes = Buffer.alloc(32 + 40);
  inodes.writeUInt16LE(2, 0); // basic file
  inodes.writeUInt16LE(0o644, 2);
  inodes.writeUInt32LE(mtime, 8);
  inodes.writeUInt32LE(1, 12);
  inodes.writeUInt32LE(0, 16); // start_block
  inodes.writeUInt32LE(0xffffffff, 20); // no fragment
  inodes.writeUInt32LE(0, 24);
  inodes.writeUInt32LE(0, 28); // file size 0
  const listingParts: Buffer[] = [];
  for (let i = 0; i < names.length; i += 256) {
    const group = names.slice(i, i + 256);
    const header = Buffer.alloc(12);
    header.writeUInt32LE(group.length - 1, 0);
    header.writeUInt32LE(0, 4); // the inode's metadata block, relative to the inode table
    header.writeUInt32LE(1, 8); // base inode number
    listingParts.push(header);
    for (const name of group) {
      const entry = Buffer.alloc(8);
      entry.writeUInt16LE(0, 0); // inode offset in its block
      entry.writeInt16LE(0, 2);
      entry.writeUInt16LE(2, 4); // basic file
      entry.writeUInt16LE(Buffer.byteLength(name) - 1, 6);
      listingParts.push(entry, Buffer.from(name));
    }
  }
  const listing = Buffer.concat(listingParts);
  const root = inodes.subarray(32);
  root.writeUInt16LE(8, 0); // extended directory
  root.writeUInt16LE(0o755, 2);
  root.writeUInt32LE(mtime, 8);
  root.writeUInt32LE(2, 12);
  root.writeUInt32LE(2, 16); // nlink
  root.writeUInt32LE(listing.length + 3, 20); // file_size counts "." and ".."
  root.writeUInt32LE(0, 24); // start_block in the directory table
  root.writeUInt32LE(3, 28); // parent inode: past the last, as mksquashfs writes for the root
  root.writeUInt16LE(0, 32); // no directory index
  root.writeUInt16LE(0, 34); // offset
  root.writeUInt32LE(0xffffffff, 36); // no xattr

  const inodeTable = metadataBlocks(inodes);
  const directoryTable = metadataBlocks(listing);
  const idBlock = metadataBlocks(Buffer.alloc(4)); // one id: 0
  const inodeTableStart = 96;
  const directoryTableStart = inodeTableStart + inodeTable.length;
  const idBlockStart = directoryTableStart + directoryTable.length;
  const idTableStart = idBlockStart + idBlock.length;
  const bytesUsed = idTableStart + 8;

  const sb = Buffer.alloc(96);
  sb.writeUInt32LE(0x73717368, 0);
  sb.writeUInt32LE(2, 4); // inodes
  sb.writeUInt32LE(mtime, 8);
  sb.writeUInt32LE(131072, 12);
  sb.writeUInt32LE(0, 16); // fragments
  sb.writeUInt16LE(1, 20); // gzip
  sb.writeUInt16LE(17, 22);
  sb.writeUInt16LE(0x0010 | 0x0200, 24); // no fragments, no xattrs
  sb.writeUInt16LE(1, 26); // ids
  sb.writeUInt16LE(4, 28);
  sb.writeUInt16LE(0, 30);
  sb.writeBigUInt64LE(32n, 32); // root inode: block 0, offset 32
  sb.writeBigUInt64LE(BigInt(bytesUsed), 40);
  sb.writeBigUInt64LE(BigInt(idTableStart), 48);
  sb.writeBigUInt64LE(NO_TABLE, 56); // xattr ids
  sb.writeBigUInt64LE(BigInt(inodeTableStart), 64);
  sb.writeBigUInt64LE(BigInt(directoryTableStart), 72);
  sb.writeBigUInt64LE(NO_TABLE, 80); // fragments
  sb.writeBigUInt64LE(NO_TABLE, 88); // export
  const idIndex = Buffer.alloc(8);
  idIndex.writeBigUInt64LE(BigInt(idBlockStart));
  const image = Buffer.concat([sb, inodeTable, directoryTable, idBlock, idIndex]);
  // Padded to 4 KiB, as mksquashfs pads.
  return Buffer.concat([image, Buffer.alloc((4096 - (image.length % 4096)) % 4096)]);
}
