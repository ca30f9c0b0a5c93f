/**
 * Paths on the extraction target are Buffers: a name from the image that is
 * not UTF-8 is written with its own bytes (nameBytes), which a string path
 * would turn into U+FFFD. Every node:fs call the extractor makes accepts one.
 */
import { decodeName, escapeName, nameBytes } from "../names.js";

const SLASH = Buffer.from("/");

/** DIR as the user wrote it, without trailing slashes ("out/" and "out" name one folder). */
export function folderPath(dir: string): Buffer {
  return Buffer.from(dir.length > 1 ? dir.replace(/\/+$/, "") || "/" : dir);
}

/** `name` (a decoded name from the image, already made safe) inside the folder `parent`. */
export function childPath(parent: Buffer, name: string): Buffer {
  const bytes = nameBytes(name);
  return parent.length === 1 && parent[0] === SLASH[0] ? Buffer.concat([SLASH, bytes]) : Buffer.concat([parent, SLASH, bytes]);
}

/** A target path for a message: raw bytes and control characters escaped as `ls -b` shows them. */
export function shown(path: Buffer): string {
  return escapeName(decodeName(path));
}
