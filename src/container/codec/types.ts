/**
 * A whole-block decompressor: one compressed block in, its bytes out. Used
 * where a format compresses independent blocks (squashfs, and later the
 * compressed containers). `maxSize` is the most the block may expand to; a
 * block that would expand further is corrupt. `maxWindow` (default maxSize)
 * is the largest history window or dictionary its header may ask for: the
 * decoder allocates what the header says before it has produced a byte, so a
 * few bytes declaring 2 GiB must be refused unread. Together they bound
 * memory and work by the structure, not by the input.
 * Corrupt input rejects with a CorruptImageError.
 */
export type BlockDecompressor = (input: Buffer, maxSize: number, maxWindow?: number) => Promise<Buffer>;
