/**
 * Names as filesystems store them: bytes. Linux filesystems (ext, squashfs,
 * Rock Ridge) hold any bytes but "/" and NUL, usually UTF-8 but not always.
 * Decoding invalid bytes to U+FFFD would give two different files one name,
 * so a name is decoded losslessly instead: UTF-8 where it is valid, and each
 * byte of an invalid sequence as a lone surrogate U+DC80 + (byte - 0x80)
 * (Python's "surrogateescape"). Such a string compares, sorts and hashes as a
 * name should; nameBytes() gives the exact bytes back for the extractor, and
 * escapeName() shows it as GNU ls -b does.
 */

const fatal = new TextDecoder("utf-8", { fatal: true });

const ESCAPE_BASE = 0xdc00;

/** Length of the valid UTF-8 sequence starting at bytes[i], or 0 when it is not one. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  const cont = (k: number) => i + k < bytes.length && (bytes[i + k] & 0xc0) === 0x80;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const b1 = bytes[i + 1];
    if (b0 === 0xe0 && b1 < 0xa0) return 0; // overlong
    if (b0 === 0xed && b1 >= 0xa0) return 0; // an encoded surrogate
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const b1 = bytes[i + 1];
    if (b0 === 0xf0 && b1 < 0x90) return 0; // overlong
    if (b0 === 0xf4 && b1 >= 0x90) return 0; // past U+10FFFF
    return 4;
  }
  return 0;
}

/** A stored name (or symlink target) as a string that keeps every byte; see the top of this file. */
export function decodeName(bytes: Uint8Array): string {
  try {
    return fatal.decode(bytes);
  } catch {
    // Not UTF-8: fall through to the lossless decoding below.
  }
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const n = utf8SequenceLength(bytes, i);
    if (n === 0) {
      out += String.fromCharCode(ESCAPE_BASE + bytes[i]);
      i += 1;
    } else {
      out += Buffer.from(bytes.buffer, bytes.byteOffset + i, n).toString("utf8");
      i += n;
    }
  }
  return out;
}

function isEscapedByte(code: number): boolean {
  return code >= ESCAPE_BASE + 0x80 && code <= ESCAPE_BASE + 0xff;
}

/** Does this name hold bytes that are not UTF-8 (decoded by decodeName as escapes)? */
export function hasRawBytes(name: string): boolean {
  for (let i = 0; i < name.length; i++) if (isEscapedByte(name.charCodeAt(i))) return true;
  return false;
}

/** The bytes decodeName() decoded `name` from (UTF-8 for an ordinary string). */
export function nameBytes(name: string): Buffer {
  if (!hasRawBytes(name)) return Buffer.from(name, "utf8");
  const parts: Buffer[] = [];
  let run = "";
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (isEscapedByte(code)) {
      if (run) parts.push(Buffer.from(run, "utf8"));
      run = "";
      parts.push(Buffer.of(code - ESCAPE_BASE));
    } else {
      run += name[i];
    }
  }
  if (run) parts.push(Buffer.from(run, "utf8"));
  return Buffer.concat(parts);
}

/** The name for text meant to be valid Unicode (JSON's `name`): raw bytes become U+FFFD. */
export function printableName(name: string): string {
  return hasRawBytes(name) ? nameBytes(name).toString("utf8") : name;
}

/** What escapeName() changes: C0 controls, DEL, C1 controls, a backslash, an escaped byte. */
const NEEDS_ESCAPE = /[\x00-\x1f\x7f-\x9f\\\udc80-\udcff]/;

const C_ESCAPES: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 0x5c: "\\\\" };

/**
 * A name as `ls -b` (GNU's escape quoting) shows it: C escapes for control
 * characters, a backslash doubled, and each byte that is not UTF-8 (or is a
 * C1 control) as \ooo octal: `bad\377\376.txt`. Safe to print on a terminal.
 * Unlike ls -b, a space stays a space: listings of ordinary names stay readable.
 */
export function escapeName(name: string): string {
  // Most names need nothing; building the others piece by piece makes a rope that a
  // listing holding many of them would pay for, so pieces are joined once.
  if (!NEEDS_ESCAPE.test(name)) return name;
  const out: string[] = [];
  for (const ch of name) {
    const code = ch.codePointAt(0) as number;
    if (isEscapedByte(code)) {
      out.push(`\\${(code - ESCAPE_BASE).toString(8).padStart(3, "0")}`);
    } else if (code < 0x20 || code === 0x7f || code === 0x5c) {
      out.push(C_ESCAPES[code] ?? `\\${code.toString(8).padStart(3, "0")}`);
    } else if (code >= 0x80 && code < 0xa0) {
      for (const byte of Buffer.from(ch, "utf8")) out.push(`\\${byte.toString(8).padStart(3, "0")}`);
    } else {
      out.push(ch);
    }
  }
  return out.join("");
}
