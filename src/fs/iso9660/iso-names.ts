/**
 * The plain ISO 9660 names: what a reader without Rock Ridge or Joliet sees.
 * Interchange level 2/3 names: d-characters (A-Z 0-9 _), name + extension at
 * most 30 characters, files carry ";1". Derived deterministically from the
 * real name, unique in their directory even after a reader drops ";1" and a
 * trailing dot, and sorted as ECMA-119 9.3 says.
 */
import { assignUnique } from "./unique-names.js";

/** ECMA-119 7.5.1: file name + extension <= 30; a directory identifier <= 31. */
const MAX_FILE_NAME_AND_EXTENSION = 30;
const MAX_DIRECTORY_IDENTIFIER = 31;
const MAX_EXTENSION = 10;

/** "Café-bar.txt" -> "CAFE_BAR.TXT": strip accents, upper-case, anything else becomes "_". */
function dCharacters(text: string): string {
  return text
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toUpperCase()
    .replace(/[^A-Z0-9_]/gu, "_");
}

interface IsoName {
  base: string;
  ext: string;
  isDirectory: boolean;
}

function candidate(name: string, isDirectory: boolean): IsoName {
  if (isDirectory) {
    return { base: dCharacters(name).slice(0, MAX_DIRECTORY_IDENTIFIER) || "_", ext: "", isDirectory };
  }
  const dot = name.lastIndexOf(".");
  let base = dCharacters(dot >= 0 ? name.slice(0, dot) : name);
  let ext = dot >= 0 ? dCharacters(name.slice(dot + 1)) : "";
  if (base.length + ext.length > MAX_FILE_NAME_AND_EXTENSION) {
    ext = ext.slice(0, MAX_EXTENSION);
    base = base.slice(0, MAX_FILE_NAME_AND_EXTENSION - ext.length);
  }
  if (base === "" && ext === "") base = "_";
  return { base, ext, isDirectory };
}

/** How Linux (map=normal) and libarchive show the name: no ";1", no trailing dot. */
function visible(n: IsoName): string {
  return n.ext === "" ? n.base : `${n.base}.${n.ext}`;
}

/** Joined, not concatenated: a flat string costs less memory than a rope when 100,000 are kept. */
function identifier(n: IsoName): string {
  return n.isDirectory ? n.base : [n.base, ".", n.ext, ";1"].join("");
}

/**
 * ISO 9660 identifiers (latin1 text: "README.;1", "DIR") for the entries of
 * one directory, in the given order. A clash keeps the first name and numbers
 * the others, shortening the name part to make room.
 */
export function isoIdentifiers(entries: ReadonlyArray<{ name: string; isDirectory: boolean }>): string[] {
  const names = entries.map((e) => candidate(e.name, e.isDirectory));
  const wanted = names.map(visible);
  const unique = assignUnique(wanted, (index, n) => {
    const { base, ext, isDirectory } = names[index];
    const tag = String(n);
    const room = (isDirectory ? MAX_DIRECTORY_IDENTIFIER : MAX_FILE_NAME_AND_EXTENSION - ext.length) - tag.length;
    return visible({ base: base.slice(0, room) + tag, ext, isDirectory });
  });
  return unique.map((v, i) => {
    if (names[i].isDirectory) return v;
    const ext = names[i].ext;
    const base = ext === "" ? v : v.slice(0, v.length - ext.length - 1);
    return identifier({ base, ext, isDirectory: false });
  });
}

/**
 * ECMA-119 9.3 order of file identifiers ("NAME.EXT;1", latin1 text): by
 * name, then extension, each compared as if padded with spaces, then by
 * version, highest first. Directory identifiers have no separators.
 */
export function compareIdentifiers(a: string, b: string): number {
  const [an, ae, av] = splitIdentifier(a);
  const [bn, be, bv] = splitIdentifier(b);
  return comparePadded(an, bn) || comparePadded(ae, be) || bv - av;
}

function splitIdentifier(id: string): [string, string, number] {
  const semi = id.lastIndexOf(";");
  if (semi < 0 || !/^\d+$/.test(id.slice(semi + 1))) return [id, "", 0];
  const body = id.slice(0, semi);
  const dot = body.lastIndexOf(".");
  return dot < 0 ? [body, "", Number(id.slice(semi + 1))] : [body.slice(0, dot), body.slice(dot + 1), Number(id.slice(semi + 1))];
}

/** Compare code unit by code unit, the shorter string padded with spaces (ECMA-119 9.3). */
export function comparePadded(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = i < a.length ? a.charCodeAt(i) : 0x20;
    const y = i < b.length ? b.charCodeAt(i) : 0x20;
    if (x !== y) return x - y;
  }
  return 0;
}
