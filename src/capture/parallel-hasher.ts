/**
 * Hashing on a second core. SHA-256 runs at about 1.9 GB/s here, as fast as
 * the copy itself, so hashing on the copier's thread would nearly halve a
 * capture's speed; a worker thread hashes while the main thread reads and
 * writes. Bytes in shared memory (the copier's aligned read buffers) are
 * hashed where they are: a copy would cost the main thread a memcpy and the
 * worker the cache misses of reading what another core just wrote (together
 * they made hashing 60% slower). Other bytes are copied into a ring of shared
 * slots, so memory stays bounded at 16 MiB ahead of the worker.
 */
import { Worker } from "node:worker_threads";
import { MultiHasher, type HashAlgorithm } from "./hasher.js";

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
const ring = Buffer.from(workerData.ring);
const shared = [];
const zeros = Buffer.alloc(1 << 20);
parentPort.on("message", (m) => {
  if (m.type === "data") {
    const data = ring.subarray(m.offset, m.offset + m.length);
    for (const [, h] of hashes) h.update(data);
    parentPort.postMessage({ type: "done", slot: m.slot });
  } else if (m.type === "share") {
    shared[m.id] = Buffer.from(m.memory);
  } else if (m.type === "shared") {
    const data = shared[m.id].subarray(m.offset, m.offset + m.length);
    for (const [, h] of hashes) h.update(data);
    parentPort.postMessage({ type: "done", slot: -1, chunk: m.chunk });
  } else if (m.type === "zeros") {
    for (let left = m.length; left > 0; left -= zeros.length) {
      const chunk = zeros.subarray(0, Math.min(left, zeros.length));
      for (const [, h] of hashes) h.update(chunk);
    }
    parentPort.postMessage({ type: "done", slot: -1 });
  } else if (m.type === "digest") {
    const out = {};
    for (const [name, h] of hashes) out[name] = h.digest("hex");
    parentPort.postMessage({ type: "digest", digests: out });
  }
});
`;

const SLOT = 1 << 20;
const SLOTS = 16;

/**
 * Chunks go through a ring of shared 1 MiB slots (no allocation per chunk):
 * the caller's bytes are copied into a free slot and the worker is told
 * which one; it hands the slot back when hashed.
 */
export class WorkerHasher implements StreamHasher {
  private readonly worker: Worker;
  private readonly ring = new SharedArrayBuffer(SLOT * SLOTS);
  private readonly view = Buffer.from(this.ring);
  private readonly free: number[] = Array.from({ length: SLOTS }, (_, i) => i);
  /** Shared memories the worker holds a view of, by id. */
  private readonly memories = new Map<SharedArrayBuffer, number>();
  /** Chunks hashed in place, waiting for the worker: the caller reuses their memory after. */
  private readonly inPlace = new Map<number, { resolve(): void; reject(err: Error): void }>();
  private chunks = 0;
  private waiting: Array<() => void> = [];
  private onDigest: ((d: Record<string, string>) => void) | undefined;
  private failure: Error | undefined;

  constructor(algorithms: HashAlgorithm[]) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithms, ring: this.ring } });
    this.worker.on("message", (m: { type: string; slot?: number; chunk?: number; digests?: Record<string, string> }) => {
      if (m.type === "done") {
        if (m.slot !== undefined && m.slot >= 0) this.free.push(m.slot);
        if (m.chunk !== undefined) {
          this.inPlace.get(m.chunk)?.resolve();
          this.inPlace.delete(m.chunk);
        }
        this.wake();
      } else if (m.type === "digest") {
        this.onDigest?.(m.digests ?? {});
      }
    });
    this.worker.on("error", (err) => {
      this.failure = err;
      for (const waiter of this.inPlace.values()) waiter.reject(err);
      this.inPlace.clear();
      this.wake();
    });
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

  async update(data: Buffer): Promise<void> {
    if (data.buffer instanceof SharedArrayBuffer) return this.hashInPlace(data, data.buffer);
    for (let done = 0; done < data.length; ) {
      const slot = this.free.length > 0 ? (this.free.pop() as number) : await this.slot();
      const length = Math.min(SLOT, data.length - done);
      data.copy(this.view, slot * SLOT, done, done + length);
      this.worker.postMessage({ type: "data", slot, offset: slot * SLOT, length });
      done += length;
    }
  }

  private hashInPlace(data: Buffer, memory: SharedArrayBuffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    let id = this.memories.get(memory);
    if (id === undefined) {
      id = this.memories.size;
      this.memories.set(memory, id);
      this.worker.postMessage({ type: "share", id, memory });
    }
    const chunk = this.chunks++;
    this.worker.postMessage({ type: "shared", id, offset: data.byteOffset, length: data.length, chunk });
    return new Promise((resolve, reject) => this.inPlace.set(chunk, { resolve, reject }));
  }

  async updateZeros(length: number): Promise<void> {
    if (length <= 0) return;
    this.worker.postMessage({ type: "zeros", length });
  }

  async digest(): Promise<Record<string, string>> {
    if (this.failure) throw this.failure;
    const digests = await new Promise<Record<string, string>>((resolve) => {
      this.onDigest = resolve;
      this.worker.postMessage({ type: "digest" });
    });
    await this.worker.terminate();
    return digests;
  }

  /** Stop the worker without a digest (the capture failed or was interrupted). */
  async dispose(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A worker hasher for large inputs, an inline one for small ones. */
export function createHasher(algorithms: HashAlgorithm[], expectedBytes: number): StreamHasher & { dispose?(): Promise<void> } {
  if (expectedBytes >= WORKER_THRESHOLD) {
    try {
      return new WorkerHasher(algorithms);
    } catch {
      // no worker threads here: hash inline
    }
  }
  return new InlineHasher(algorithms);
}
