/**
 * Which files, and which of the filesystem's own structures, lie in damaged
 * byte ranges of a filesystem: what `platter check` adds to a corruption
 * found in an image.
 *
 * One walk of the tree: each file's pieces (FileSystem.extents) are read
 * once and each is matched against the sorted ranges by binary search, so
 * the work is the size of the tree, not damaged ranges times files; nothing
 * of a file is kept once it is matched, and at most `limit` names per range.
 */
import { PlatterError } from "../errors.js";
import { escapeName } from "../fs/names.js";
import type { FileExtent, FileSystem, FsNode } from "../fs/types.js";
import { walk } from "../fs/walk.js";
import { LruCache } from "../util/lru.js";
import { mergeRanges } from "../util/ranges.js";

/** Files (and structures) listed per damaged range; the rest are counted. */
export const OWNERS_LISTED = 100;
/** Hard-linked files whose hits are kept, so each of their names costs no second read of the file's map. */
const LINKED_FILES_KEPT = 4096;

/** Bytes of a file a damaged range holds. */
export interface FileHit {
  /** The path inside the filesystem, names decoded losslessly (fs/names.ts). */
  path: string;
  /** The bytes of the file hit: its data, or with `map`, the bytes found through the damaged part of its inode or block map. */
  offset: number;
  length: number;
  map?: true;
}

/** Bytes of one of the filesystem's own structures a damaged range holds. */
export interface RegionHit {
  /** "inode table of group 3", "FAT 1 of 2". */
  what: string;
  /** The bytes of the structure hit. */
  offset: number;
  length: number;
}

export interface RangeOwners {
  files: FileHit[];
  filesNotListed: number;
  metadata: RegionHit[];
  metadataNotListed: number;
}

/**
 * For each of `ranges` ([offset, length] in the filesystem's source, sorted,
 * not overlapping), what it hits. A directory that cannot be read, or a
 * file whose map cannot, is warned about and the walk goes on.
 */
export async function ownersInFilesystem(
  fs: FileSystem<FsNode>,
  ranges: ReadonlyArray<readonly [number, number]>,
  onWarning: (message: string) => void,
  limit = OWNERS_LISTED,
): Promise<RangeOwners[]> {
  const owners: RangeOwners[] = ranges.map(() => ({ files: [], filesNotListed: 0, metadata: [], metadataNotListed: 0 }));
  const extents = fs.extents?.bind(fs);
  if (fs.regions) {
    for await (const region of fs.regions()) {
      forEachOverlap(ranges, region.fsOffset, region.length, (i, from, to) => {
        const hit = owners[i] as RangeOwners;
        if (hit.metadata.length < limit) hit.metadata.push({ what: region.what, offset: from - region.fsOffset, length: to - from });
        else hit.metadataNotListed++;
      });
    }
  }
  if (!extents) return owners;
  const linked = new LruCache<string | number, Array<[number, FileHit]>>(LINKED_FILES_KEPT);
  const filesListed = ranges.map(() => 0);
  let unmapped = 0;
  let firstUnmapped = "";
  const visit = async (node: FsNode, path: string) => {
    const id = node.stat.type !== "dir" && node.stat.nlink > 1 ? node.stat.id : null;
    let hits = id === null ? undefined : linked.get(id);
    if (!hits) {
      try {
        hits = await hitsOf(extents(node), ranges);
      } catch (err) {
        if (!(err instanceof PlatterError)) throw err;
        if (unmapped++ === 0) firstUnmapped = `${escapeName(path)}: ${err.message}`;
        return;
      }
      if (id !== null) linked.set(id, hits);
    }
    // Per range, a file is listed with all its hits (data and map), or counted once.
    let previous = -1;
    let listing = false;
    for (const [i, hit] of hits) {
      const hitOwners = owners[i] as RangeOwners;
      if (i !== previous) {
        previous = i;
        listing = (filesListed[i] as number) < limit;
        if (listing) filesListed[i]++;
        else hitOwners.filesNotListed++;
      }
      if (listing) hitOwners.files.push({ ...hit, path });
    }
  };
  const root = await fs.root();
  await visit(root, "/");
  const walkOptions = {
    onWarning,
    onUnreadable: (path: string, err: PlatterError) => onWarning(`${escapeName(path)} could not be read (${err.message}): the files below it are not named`),
  };
  for await (const entry of walk(fs, root, "/", walkOptions)) await visit(entry.node, entry.path);
  if (unmapped > 0) {
    onWarning(`where ${unmapped === 1 ? "a file is" : `${unmapped} files are`} stored could not be read, so ${unmapped === 1 ? "it is" : "they are"} not named: ${firstUnmapped}`);
  }
  return owners;
}

/** The ranges a file's pieces hit, as [range index, bytes of the file], merged per range and kind. */
async function hitsOf(pieces: AsyncIterable<FileExtent>, ranges: ReadonlyArray<readonly [number, number]>): Promise<Array<[number, FileHit]>> {
  const byRange = new Map<number, { data: Array<[number, number]>; map: Array<[number, number]> }>();
  for await (const piece of pieces) {
    forEachOverlap(ranges, piece.fsOffset, piece.fsLength, (i, from, to) => {
      let hit = byRange.get(i);
      if (!hit) byRange.set(i, (hit = { data: [], map: [] }));
      // A stored byte is a byte of the file only when the piece is the file's bytes as they are; else all it leads to is lost with it.
      const asIs = !piece.map && !piece.compressed;
      const bytes: [number, number] = asIs ? [piece.fileOffset + (from - piece.fsOffset), to - from] : [piece.fileOffset, piece.length];
      (piece.map ? hit.map : hit.data).push(bytes);
    });
  }
  const hits: Array<[number, FileHit]> = [];
  for (const [i, { data, map }] of [...byRange].sort((a, b) => a[0] - b[0])) {
    for (const [offset, length] of mergeRanges(data)) hits.push([i, { path: "", offset, length }]);
    for (const [offset, length] of mergeRanges(map)) hits.push([i, { path: "", offset, length, map: true }]);
  }
  return hits;
}

/** Calls `hit(index, from, to)` for each of the sorted `ranges` that [start, start + length) overlaps, with the bytes they share. */
function forEachOverlap(
  ranges: ReadonlyArray<readonly [number, number]>,
  start: number,
  length: number,
  hit: (index: number, from: number, to: number) => void,
): void {
  const end = start + length;
  // The first range that ends after `start`.
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const [s, n] = ranges[mid] as readonly [number, number];
    if (s + n <= start) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < ranges.length; i++) {
    const [s, n] = ranges[i] as readonly [number, number];
    if (s >= end) break;
    hit(i, Math.max(s, start), Math.min(s + n, end));
  }
}
