/**
 * The one small interface every filesystem reader (iso9660, fat, ext, ...)
 * gives back, so ls, cat, extract and used-block capture work for all of them.
 * A node is the reader's own handle on a file (an inode, a directory record);
 * callers only pass it back.
 */

/** What `ls --json` calls the kinds of files: a device, FIFO or socket is named, never folded away. */
export type FileType = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";

/** The file type bits of a Unix mode (S_IFMT), as a FileType; undefined for a value no kernel uses. */
export function fileTypeFromMode(mode: number): FileType | undefined {
  switch (mode & 0o170000) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o120000:
      return "symlink";
    case 0o020000:
      return "char";
    case 0o060000:
      return "block";
    case 0o010000:
      return "fifo";
    case 0o140000:
      return "socket";
    default:
      return undefined;
  }
}

export interface FsStat {
  type: FileType;
  size: number;
  /** Permission bits (and setuid/setgid/sticky), not the file type: 0o644. */
  mode: number;
  /** Unix seconds (may be fractional). */
  mtime: number;
  uid: number;
  gid: number;
  nlink: number;
  /**
   * Identity for hard links: two entries with the same non-null `id` are the
   * same file (an inode number; an ISO extent location).
   */
  id: number | string | null;
  /** [major, minor] of a character or block device. */
  rdev?: [number, number];
}

export interface FsNode {
  readonly stat: FsStat;
}

export interface FsDirEntry<N extends FsNode = FsNode> {
  /**
   * The name exactly as stored, decoded without loss (fs/names.ts: bytes that
   * are not UTF-8 survive as escapes that nameBytes() turns back). A
   * directory's own "." and ".." links are never listed; an entry a crafted
   * image names "." or ".." is, as stored (extract renames it, with a warning).
   */
  name: string;
  node: N;
}

/**
 * Where some of a file is stored, in the filesystem's source: what names the
 * files a damaged range of a disk hits.
 */
export interface FileExtent {
  /** The bytes of the file the piece holds, or, for a `map` piece, the bytes only it leads to. */
  fileOffset: number;
  length: number;
  /** Where the piece is in the filesystem's source, and what it takes there. */
  fsOffset: number;
  fsLength: number;
  /** Stored compressed (a squashfs block or fragment, a zisofs file): a damaged byte loses all the bytes it holds. */
  compressed?: boolean;
  /** The file's own metadata (its inode, a block of its block map), not its bytes: damage there loses the bytes it leads to. */
  map?: boolean;
}

/** A structure the filesystem itself needs (a superblock, a FAT, an inode table), where it is in the filesystem's source. */
export interface FsRegion {
  /** "inode table of group 3", "FAT 1". */
  what: string;
  fsOffset: number;
  length: number;
}

export interface FileSystem<N extends FsNode = FsNode> {
  /** blkid's name: iso9660, vfat, ext4... */
  readonly type: string;
  readonly label: string | null;
  /** Optional: what the user should know before trusting what is read (an unreplayed journal...). */
  readonly warnings?: readonly string[];
  root(): Promise<N>;
  /**
   * The entries of a directory node, without "." and "..", in the order they are
   * stored. A stream, not an array: a directory may hold millions of names, and
   * memory must not grow with it.
   */
  list(dir: N): AsyncIterable<FsDirEntry<N>>;
  /** One entry by name, or undefined; may be faster than list() (htree, sorted ISO records). */
  lookup(dir: N, name: string): Promise<N | undefined>;
  /** The target, decoded like names (fs/names.ts). */
  readlink(node: N): Promise<string>;
  /**
   * Bytes of a regular file; reading past its size is an error. Holes read as zeros.
   * When `into` is given the bytes land in it (from index 0) and it (or its start) is
   * returned, as BlockSource.read does; readers may ignore it and return a new buffer.
   */
  read(node: N, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * Optional: copy [offset, offset+length) of a regular file, which must lie inside its
   * data ranges, into an open file descriptor at the same offset without passing through
   * user memory. Resolves false, having written nothing, when it cannot.
   */
  copyTo?(node: N, offset: number, length: number, fd: number): Promise<boolean>;
  /** Optional: the byte ranges of the file that hold data (for sparse extraction). */
  dataRanges?(node: N): Promise<Array<[number, number]>>;
  /**
   * Optional: where a file, directory or symlink is stored, piece by piece, in
   * no particular order; holes and never-written (preallocated) space have no
   * piece. A stream: a fragmented file may have millions.
   */
  extents?(node: N): AsyncIterable<FileExtent>;
  /** Optional: the filesystem's own structures that are no file's (superblock, allocation tables, inode tables). */
  regions?(): AsyncIterable<FsRegion>;
  close(): Promise<void>;
}
