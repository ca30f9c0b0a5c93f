/** The file type identifier at offset 0 of a VHDX: "vhdxfile" and the creator's name (UTF-16LE, diagnostic only). */
export const FILE_SIGNATURE = "vhdxfile";
const CREATOR_BYTES = 512;

export function hasVhdxSignature(head: Buffer): boolean {
  return head.length >= 8 && head.toString("latin1", 0, 8) === FILE_SIGNATURE;
}

export function decodeCreator(buf: Buffer): string {
  const bytes = buf.subarray(8, 8 + CREATOR_BYTES);
  let end = 0;
  while (end + 1 < bytes.length && (bytes[end] !== 0 || bytes[end + 1] !== 0)) end += 2;
  return bytes.toString("utf16le", 0, end);
}

export function encodeFileIdentifier(creator: string): Buffer {
  const buf = Buffer.alloc(8 + CREATOR_BYTES);
  buf.write(FILE_SIGNATURE, 0, "latin1");
  buf.write(creator.slice(0, CREATOR_BYTES / 2 - 1), 8, "utf16le");
  return buf;
}
