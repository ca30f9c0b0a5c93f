import type { FsDirEntry, FsNode } from "./types.js";

/**
 * Lookup in a folder whose names are case-insensitive (FAT, exFAT): an exact
 * match wins, then one equal but for case.
 */
export function findIgnoringCase<N extends FsNode>(entries: Array<FsDirEntry<N>>, name: string): N | undefined {
  const exact = entries.find((e) => e.name === name);
  if (exact) return exact.node;
  const folded = name.toUpperCase();
  return entries.find((e) => e.name.toUpperCase() === folded)?.node;
}
