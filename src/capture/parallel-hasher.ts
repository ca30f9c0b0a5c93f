/**
 * Hashing on other cores. SHA-256 runs at about 1.9 GB/s here, no faster
 * than the copy itself, so hashing on the copier's thread would nearly halve
 * a capture's speed; worker threads (one per algorithm) hash while the main
 * thread reads and writes. Bytes in shared memory (the copier's aligned read
 * buffers) reach the workers without a copy on the main thread; other bytes
 * are copied into a ring of shared slots, so memory stays bounded at 16 MiB
 * ahead of the workers.
 */
import { Worker } from "node:worker_threads";
import { FileSource } from "../io/file-source.js";
import { MultiHasher, type HashAlgorithm } from "./hasher.js";
import { InTurn } from "../util/in-turn.js";

/** What the capture feeds: bytes in order, then the digests. */
export interface StreamHasher {
  /** The caller may reuse `data` once this returns, or once the promise it returns resolves. */
  update(data: Buffer): void | Promise<void>;
  /** `length` zero bytes (holes), without materialising them. */
  updateZeros(length: number): void | Promise<void>;
  digest(): Promise<Record<string, string>>;
}

/** Below this, a worker's start-up costs more than it saves. */
const WORKER_THRESHOLD = 64 << 20;

/** Same thread: small inputs, and the fallback when workers are unavailable. */
export class InlineHasher implements StreamHasher {
  private readonly hasher: MultiHasher;
  constructor(algorithms: HashAlgorithm[]) {
    this.hasher = new MultiHasher(algorithms);
  }
  update(data: Buffer): void {
    this.hasher.update(data);
  }
  updateZeros(length: number): void {
    this.hasher.updateZeros(length);
  }
  async digest(): Promise<Record<string, string>> {
    return this.hasher.digest();
  }
}

// The worker is plain CommonJS code, so it runs the same from dist/ and under tsx.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hashes = workerData.algorithms.map((a) => [a, createHash(a)]);
const memories = [];
const zeros = Buffer.alloc(1 << 20);
const stage = Buffer.allocUnsafe(1 << 20);
parentPort.on("message", (m) => {
  if (m.type === "share") {
    memories[m.id] = Buffer.from(m.memory);
  } else if (m.type === "hash") {
    const data = memories[m.id].subarray(m.offset, m.offset + m.length);
    if (workerData.staged) {
      // Bytes a device just wrote to memory are in no cache: hashed where they are, the hash stalls
      // on every miss, while a copy streams them into this core's cache first (a third faster here).
      for (let at = 0; at < data.length; at += stage.length) {
        const n = data.copy(stage, 0, at, Math.min(data.length, at + stage.length));
        for (const [, h] of hashes) h.update(stage.subarray(0, n));
      }
    } else {
      // Bytes the kernel copied out of the page cache were just written by a CPU: the copy would only cost.
      for (const [, h] of hashes) h.update(data);
    }
    parentPort.postMessage({ type: "done", chunk: m.chunk });
  } else if (m.type === "zeros") {
    for (let left = m.length; left > 0; left -= zeros.length) {
      const chunk = zeros.subarray(0, Math.min(left, zeros.length));
      for (const [, h] of hashes) h.update(chunk);
    }
  } else if (m.type === "digest") {
    const out = {};
    for (const [name, h] of hashes) out[name] = h.digest("hex");
    parentPort.postMessage({ type: "digest", digests: out });
  }
});
`;

const SLOT = 1 << 20;
const SLOTS = 16;
/** The ring's id among the shared memories the workers know. */
const RING = 0;

interface Chunk {
  /** Workers still hashing it. */
  left: number;
  /** The ring slot it occupies, freed when every worker is done. */
  slot?: number;
  resolve?(): void;
  reject?(err: Error): void;
}

/**
 * One worker per algorithm: `--hash md5,sha256` hashes on two cores, not one
 * after the other on a single one. Every worker reads the same bytes: shared
 * memory in place, anything else through one ring of shared 1 MiB slots
 * (no allocation per chunk), whose slot is reused once every worker is done.
 */
export class WorkerHasher implements StreamHasher {
  private readonly workers: Worker[];
  private readonly ring = new SharedArrayBuffer(SLOT * SLOTS);
  private readonly view = Buffer.from(this.ring);
  private readonly free: number[] = Array.from({ length: SLOTS }, (_, i) => i);
  /** Shared memories every worker holds a view of, by id. */
  private readonly memories = new Map<SharedArrayBuffer, number>();
  private readonly chunks = new Map<number, Chunk>();
  private nextChunk = 0;
  /**
   * Updates reach the workers in call order. Callers need not wait for one
   * update before the next (the copier does not), and an update waiting for
   * ring slots must not let a later one take them: the bytes would be hashed
   * out of order.
   */
  private readonly posting = new InTurn();
  private waiting: Array<() => void> = [];
  private failure: Error | undefined;

  constructor(
    private readonly algorithms: HashAlgorithm[],
    staged = false,
  ) {
    this.workers = algorithms.map((algorithm) => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithms: [algorithm], staged } });
      worker.on("message", (m: { type: string; chunk?: number }) => {
        if (m.type === "done") this.done(m.chunk as number);
      });
      worker.on("error", (err) => this.fail(err));
      return worker;
    });
    this.share(this.ring);
  }

  private share(memory: SharedArrayBuffer): number {
    let id = this.memories.get(memory);
    if (id === undefined) {
      id = this.memories.size;
      this.memories.set(memory, id);
      this.post({ type: "share", id, memory });
    }
    return id;
  }

  private post(message: object): void {
    for (const w of this.workers) w.postMessage(message);
  }

  private hash(id: number, offset: number, length: number, chunk: Chunk): number {
    const n = this.nextChunk++;
    this.chunks.set(n, chunk);
    this.post({ type: "hash", id, offset, length, chunk: n });
    return n;
  }

  private done(n: number): void {
    const chunk = this.chunks.get(n);
    if (!chunk || --chunk.left > 0) return;
    this.chunks.delete(n);
    if (chunk.slot !== undefined) this.free.push(chunk.slot);
    chunk.resolve?.();
    this.wake();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const chunk of this.chunks.values()) chunk.reject?.(err);
    this.chunks.clear();
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiting;
    this.waiting = [];
    for (const w of waiters) w();
  }

  private async slot(): Promise<number> {
    while (!this.failure && this.free.length === 0) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    if (this.failure) throw this.failure;
    return this.free.pop() as number;
  }

  update(data: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const memory = data.buffer;
    if (memory instanceof SharedArrayBuffer) {
      // Hashed where it is: the caller may reuse it once every worker is done.
      let hashed: Promise<void> | undefined;
      const posted = this.posting.run(() => {
        hashed = new Promise<void>((resolve, reject) =>
          this.hash(this.share(memory), data.byteOffset, data.length, { left: this.workers.length, resolve, reject }),
        );
      });
      return posted.then(() => hashed);
    }
    return this.posting.run(async () => {
      for (let done = 0; done < data.length; ) {
        const slot = await this.slot();
        const length = Math.min(SLOT, data.length - done);
        data.copy(this.view, slot * SLOT, done, done + length);
        this.hash(RING, slot * SLOT, length, { left: this.workers.length, slot });
        done += length;
      }
    });
  }

  updateZeros(length: number): Promise<void> {
    return this.posting.run(() => {
      if (length > 0) this.post({ type: "zeros", length });
    });
  }

  async digest(): Promise<Record<string, string>> {
    await this.posting.idle();
    if (this.failure) throw this.failure;
    const parts = await Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<Record<string, string>>((resolve, reject) => {
            worker.on("message", (m: { type: string; digests?: Record<string, string> }) => {
              if (m.type === "digest") resolve(m.digests ?? {});
            });
            worker.once("error", reject);
            worker.postMessage({ type: "digest" });
          }),
      ),
    );
    await this.dispose();
    const all = Object.assign({}, ...parts) as Record<string, string>;
    // In the order asked for, whichever worker answered first.
    return Object.fromEntries(this.algorithms.map((a) => [a, all[a]]));
  }

  /** Stop the workers without a digest (the capture failed or was interrupted). */
  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Does `source` read around the page cache (O_DIRECT), so the bytes it gives are in no CPU cache? */
export function readsAroundCache(source: unknown): boolean {
  return source instanceof FileSource && source.direct;
}

/**
 * A worker hasher for large inputs, an inline one for small ones. `staged`:
 * the bytes come from direct reads (see readsAroundCache).
 */
export function createHasher(
  algorithms: HashAlgorithm[],
  expectedBytes: number,
  staged = false,
): StreamHasher & { dispose?(): Promise<void> } {
  if (expectedBytes >= WORKER_THRESHOLD) {
    try {
      return new WorkerHasher(algorithms, staged);
    } catch {
      // no worker threads here: hash inline
    }
  }
  return new InlineHasher(algorithms);
}
