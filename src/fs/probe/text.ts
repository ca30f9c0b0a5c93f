/** blkid's way of turning on-disk labels and UUIDs into text. */

/** Up to the first NUL. */
function untilNul(buf: Buffer): Buffer {
  const nul = buf.indexOf(0);
  return nul === -1 ? buf : buf.subarray(0, nul);
}

/** blkid trims trailing whitespace (isspace) and drops an empty label. */
function finish(text: string, trimStart = false): string | null {
  let out = text.replace(/[ \t\n\v\f\r]+$/, "");
  if (trimStart) out = out.replace(/^[ \t\n\v\f\r]+/, "");
  return out.length ? out : null;
}

/** A label stored as bytes (UTF-8 on Linux filesystems, a code page on FAT: latin1 keeps every byte). */
export function byteLabel(buf: Buffer, encoding: "utf8" | "latin1" = "utf8", trimStart = false): string | null {
  return finish(untilNul(buf).toString(encoding), trimStart);
}

/** A label stored as UTF-16 (NTFS, exFAT: little-endian; Joliet, HFS+, UDF: big-endian), up to a NUL. */
export function utf16Label(buf: Buffer, bigEndian: boolean): string | null {
  const even = buf.subarray(0, buf.length & ~1);
  const units = bigEndian ? Buffer.from(even).swap16() : even;
  const text = units.toString("utf16le");
  const nul = text.indexOf("\0");
  return finish(nul === -1 ? text : text.slice(0, nul));
}

/** 16 raw bytes as a DCE UUID (lower case, 8-4-4-4-12); null when all zero, as blkid does. */
export function dceUuid(bytes: Buffer): string | null {
  if (bytes.every((b) => b === 0)) return null;
  const h = bytes.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A 4-byte volume serial (FAT, exFAT) as blkid prints it: "5EED-0005". null when zero. */
export function serialUuid(bytes: Buffer): string | null {
  if (bytes.every((b) => b === 0)) return null;
  const hex = (i: number) => bytes[i].toString(16).padStart(2, "0").toUpperCase();
  return `${hex(3)}${hex(2)}-${hex(1)}${hex(0)}`;
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
