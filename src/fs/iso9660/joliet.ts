/**
 * Joliet: a second directory tree whose names are UCS-2 big-endian, for
 * Windows and 7-Zip. Names are limited to 103 characters (what
 * `mkisofs -joliet-long` allows; the specification says 64) and may not
 * hold * / : ; ? \ or control characters.
 */
import { comparePadded } from "./iso-names.js";
import { assignUnique } from "./unique-names.js";

/** Longest Joliet name platter writes, in UCS-2 characters, without the ";1" version. */
export const JOLIET_MAX_NAME = 103;

/** Longest extension kept whole when a long name is shortened. */
const MAX_KEPT_EXTENSION = 16;

/** Text -> UTF-16 big-endian (UCS-2 for characters in the Basic Multilingual Plane). */
export function encodeUcs2(text: string): Buffer {
  const buf = Buffer.from(text, "utf16le");
  return buf.swap16();
}

/** UCS-2/UTF-16 big-endian -> text; an odd trailing byte is dropped. */
export function decodeUcs2(buf: Buffer): string {
  const even = Buffer.from(buf.subarray(0, buf.length - (buf.length % 2)));
  return even.swap16().toString("utf16le");
}

/**
 * The Joliet form of one name, before uniqueness: characters Joliet forbids
 * and characters outside the BMP become "_", trailing dots go (Windows drops
 * them), and a name longer than 103 characters is shortened, keeping its
 * extension.
 */
export function jolietCandidate(name: string, isDirectory: boolean): string {
  let out = "";
  for (const ch of name) {
    const code = ch.codePointAt(0) ?? 0;
    out += code < 0x20 || code > 0xffff || "*/:;?\\".includes(ch) ? "_" : ch;
  }
  out = out.replace(/\.+$/, "");
  if (out === "") out = "_";
  return shorten(out, JOLIET_MAX_NAME, isDirectory);
}

function splitExtension(name: string, isDirectory: boolean): [string, string] {
  const dot = name.lastIndexOf(".");
  if (isDirectory || dot <= 0 || name.length - dot > MAX_KEPT_EXTENSION) return [name, ""];
  return [name.slice(0, dot), name.slice(dot)];
}

function shorten(name: string, max: number, isDirectory: boolean): string {
  if (name.length <= max) return name;
  const [base, ext] = splitExtension(name, isDirectory);
  return base.slice(0, max - ext.length) + ext;
}

/**
 * Joliet names for the entries of one directory, in the same order, unique
 * after readers drop ";1" (a clash gets "~N" before its extension).
 */
export function jolietNames(entries: ReadonlyArray<{ name: string; isDirectory: boolean }>): string[] {
  const wanted = entries.map((e) => jolietCandidate(e.name, e.isDirectory));
  return assignUnique(wanted, (index, n) => {
    const [base, ext] = splitExtension(wanted[index], entries[index].isDirectory);
    const tag = `~${n}`;
    return base.slice(0, JOLIET_MAX_NAME - ext.length - tag.length) + tag + ext;
  });
}

const JOLIET_VERSION = ";1";

/** The identifier bytes of a Joliet record: files carry the ";1" version as ISO 9660 files do. */
export function jolietIdentifier(name: string, isDirectory: boolean): Buffer {
  return encodeUcs2(isDirectory ? name : `${name}${JOLIET_VERSION}`);
}

/** The byte length of jolietIdentifier(name, isDirectory): two bytes for each UTF-16 unit. */
export function jolietIdentifierLength(name: string, isDirectory: boolean): number {
  return 2 * (name.length + (isDirectory ? 0 : JOLIET_VERSION.length));
}

/** Order of Joliet records: ECMA-119 9.3 applied to the UCS-2 names (shorter padded with spaces). */
export const compareJolietNames = comparePadded;
