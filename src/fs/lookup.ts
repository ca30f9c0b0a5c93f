import type { FsDirEntry, FsNode } from "./types.js";

/**
 * Lookup in a folder whose names are case-insensitive (FAT, exFAT): an exact
 * match wins, then the first one equal but for case. One pass over a listing
 * or a stream of one, so a huge folder is never held.
 */
export async function findIgnoringCase<N extends FsNode>(
  entries: Iterable<FsDirEntry<N>> | AsyncIterable<FsDirEntry<N>>,
  name: string,
): Promise<N | undefined> {
  const folded = name.toUpperCase();
  let equalButForCase: N | undefined;
  for await (const entry of entries) {
    if (entry.name === name) return entry.node;
    if (!equalButForCase && entry.name.toUpperCase() === folded) equalButForCase = entry.node;
  }
  return equalButForCase;
}
