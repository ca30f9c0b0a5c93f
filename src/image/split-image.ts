/**
 * An image cut by `split` (Clonezilla cuts its images with `split -a 2 -b
 * 4096MB`): the user names the first piece, "sda1.ext4-ptcl-img.gz.aa", or
 * the image's own name when only its pieces exist. The pieces follow split's
 * suffixes: fixed-width (-a N: aa..zz), or GNU split's default, which after
 * "yz" widens to "zaaa" and later to "zzaaaa". A piece missing from the
 * middle (ab and ad but no ac) is refused, not read as a shorter image.
 */
import { existsSync, readdir as readdirCallback } from "node:fs";
import { basename, dirname } from "node:path";
import { promisify } from "node:util";
import { CorruptImageError, UsageError } from "../errors.js";
import { ConcatSource } from "../io/concat-source.js";
import { FileSource, type OpenSourceOptions } from "../io/file-source.js";

/** fs's callback form: node:fs/promises costs every command 3 ms of start-up to load. */
const readdir = promisify(readdirCallback);

const A = "a".charCodeAt(0);
const LETTERS = 26;

/** The suffixes split may use after `suffix`, most likely first. */
function nextSuffixes(suffix: string): string[] {
  const candidates: string[] = [];
  const plain = increment(suffix); // split -a N
  if (plain) candidates.push(plain);
  // GNU split's default keeps its widened prefix of z's; when the rest would
  // go from "yz..z" to "z..", it widens instead: "yz" -> "zaaa".
  const [, zs, rest] = suffix.match(/^(z*)(.*)$/) as RegExpMatchArray;
  if (/^yz*$/.test(rest)) candidates.push(`${zs}z${"a".repeat(rest.length + 1)}`);
  return candidates;
}

/** The next fixed-width suffix ("az" -> "ba"); null after "zz...z". */
function increment(suffix: string): string | null {
  const codes = [...suffix].map((c) => c.charCodeAt(0) - A);
  for (let i = codes.length - 1; i >= 0; i--) {
    if (++codes[i] < LETTERS) return String.fromCharCode(...codes.map((c) => c + A));
    codes[i] = 0;
  }
  return null;
}

/**
 * The pieces of the split image `path` names, in order; null when it names
 * no split image. A single ".aa" piece is an image of one piece.
 */
export async function splitPieces(path: string): Promise<string[] | null> {
  let base: string;
  let first: string;
  const named = path.match(/^(.+)\.(a{2,})$/);
  if (named) {
    [, base, first] = named;
  } else if (!existsSync(path) && existsSync(`${path}.aa`)) {
    base = path;
    first = "aa";
  } else {
    return null;
  }
  const suffixes = [first];
  for (;;) {
    const next = nextSuffixes(suffixes[suffixes.length - 1]).find((s) => existsSync(`${base}.${s}`));
    if (!next) break;
    suffixes.push(next);
  }
  await refuseGaps(base, suffixes);
  return suffixes.map((s) => `${base}.${s}`);
}

/** Another piece-like name beside the pieces found means one between them is missing. */
async function refuseGaps(base: string, suffixes: string[]): Promise<void> {
  const found = new Set(suffixes);
  const prefix = `${basename(base)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(base));
  } catch {
    return; // an unlistable folder: the pieces found are all that can be checked
  }
  const width = suffixes[0].length;
  const stray = names
    .filter((name) => name.startsWith(prefix))
    .map((name) => name.slice(prefix.length))
    .filter((s) => /^[a-z]+$/.test(s) && (s.length === width || (s.length > width && s.startsWith("z"))) && !found.has(s))
    .sort((a, b) => a.length - b.length || (a < b ? -1 : 1))[0];
  if (stray === undefined) return;
  const missing = nextSuffixes(suffixes[suffixes.length - 1])[0] ?? "?";
  throw new CorruptImageError(`${base}.${stray}: a piece of a split image, but ${base}.${missing} before it is missing`);
}

/** The pieces as one source (ConcatSource checks their sizes); each piece closed again if one fails to open. */
export async function openPieces(pieces: readonly string[], options: OpenSourceOptions): Promise<ConcatSource> {
  const opened: FileSource[] = [];
  try {
    for (const piece of pieces) {
      const file = await FileSource.open(piece, options);
      opened.push(file);
      if (file.isBlockDevice) throw new UsageError(`${piece}: a block device, not a piece of a split image`);
    }
    return new ConcatSource(opened, pieces[0]);
  } catch (err) {
    await Promise.allSettled(opened.map((piece) => piece.close()));
    throw err;
  }
}
