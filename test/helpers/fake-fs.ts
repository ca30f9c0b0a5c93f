/**
 * A FileSystem double built from a description, for what no reader gives yet
 * or no image should hold: names with any bytes, devices with numbers,
 * duplicate names, a folder of a million entries made on the fly (children
 * from a generator are never held), a file whose reads fail or are slow.
 */
import { CorruptImageError } from "../../src/errors.js";
import type { FileSystem, FileType, FsDirEntry, FsNode, FsStat } from "../../src/fs/types.js";

export interface FakeSpec {
  type?: FileType;
  mode?: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  mtime?: number;
  /** Same id and nlink > 1: hard links to one file. */
  id?: number;
  rdev?: [number, number];
  /** A file's bytes (or its size, all "x", when a number). */
  content?: string | Buffer | number;
  target?: string;
  /** A folder's entries, in stored order; duplicate names allowed. A function is called anew for every listing. */
  children?: Array<[string, FakeSpec]> | (() => Iterable<[string, FakeSpec]>);
  /** Reads past this offset fail as a corrupt image would. */
  failAfter?: number;
}

export interface FakeNode extends FsNode {
  readonly spec: FakeSpec;
}

const DEFAULT_MODE: Record<FileType, number> = { file: 0o644, dir: 0o755, symlink: 0o777, char: 0o600, block: 0o600, fifo: 0o644, socket: 0o755 };

function contentOf(spec: FakeSpec): Buffer | number {
  return typeof spec.content === "string" ? Buffer.from(spec.content) : (spec.content ?? 0);
}

export class FakeFs implements FileSystem<FakeNode> {
  readonly type = "fake";
  readonly label = null;
  private nextId = 1_000_000_000;
  private readonly rootNode: FakeNode;

  constructor(root: FakeSpec) {
    this.rootNode = this.node({ type: "dir", ...root });
  }

  node(spec: FakeSpec): FakeNode {
    const type: FileType = spec.type ?? (spec.children ? "dir" : spec.target !== undefined ? "symlink" : "file");
    const content = contentOf(spec);
    const size = type === "file" ? (typeof content === "number" ? content : content.length) : type === "symlink" ? Buffer.byteLength(spec.target ?? "") : 0;
    const stat: FsStat = {
      type,
      size,
      mode: spec.mode ?? DEFAULT_MODE[type],
      mtime: spec.mtime ?? 1_700_000_000,
      uid: spec.uid ?? 0,
      gid: spec.gid ?? 0,
      nlink: spec.nlink ?? 1,
      id: spec.id ?? this.nextId++,
      ...(spec.rdev ? { rdev: spec.rdev } : {}),
    };
    return { stat, spec };
  }

  async root(): Promise<FakeNode> {
    return this.rootNode;
  }

  async *list(dir: FakeNode): AsyncGenerator<FsDirEntry<FakeNode>> {
    const children = dir.spec.children ?? [];
    for (const [name, spec] of typeof children === "function" ? children() : children) yield { name, node: this.node(spec) };
  }

  async lookup(dir: FakeNode, name: string): Promise<FakeNode | undefined> {
    for await (const e of this.list(dir)) if (e.name === name) return e.node;
    return undefined;
  }

  async readlink(node: FakeNode): Promise<string> {
    return node.spec.target ?? "";
  }

  async read(node: FakeNode, offset: number, length: number): Promise<Buffer> {
    if (node.spec.failAfter !== undefined && offset + length > node.spec.failAfter) {
      throw new CorruptImageError(`fake: read at ${offset} fails`);
    }
    const content = contentOf(node.spec);
    return typeof content === "number" ? Buffer.alloc(length, "x") : content.subarray(offset, offset + length);
  }

  async close(): Promise<void> {}
}
