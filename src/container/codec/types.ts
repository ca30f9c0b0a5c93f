/**
 * A whole-block decompressor: one compressed block in, its bytes out. Used
 * where a format compresses independent blocks (squashfs, and later the
 * compressed containers). `maxSize` is the most the block may expand to; a
 * block that would expand further is corrupt (this also bounds memory).
 * Corrupt input rejects with a CorruptImageError.
 */
export type BlockDecompressor = (input: Buffer, maxSize: number) => Promise<Buffer>;
