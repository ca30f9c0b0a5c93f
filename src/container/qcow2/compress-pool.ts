/**
 * Compressing clusters on every core, a batch at a time: zlib's raw deflate
 * as qemu configures it in a small pool of worker threads (Node's zlib
 * calls are synchronous there), zstd through the system libzstd
 * (zstd/libzstd.ts), whose calls already run on koffi's thread pool.
 *
 * A message per batch, not per cluster: on a busy machine every hand-over
 * between threads waits for a time slice, and a 64 KiB cluster compresses
 * faster than that. And batches live in slots of shared memory, filled by
 * the writer, compressed in place by a worker, written to the file from
 * there, then reused: at a gigabyte a minute, a fresh buffer per cluster
 * is garbage V8 frees late enough to cost a hundred megabytes.
 */
import { Worker } from "node:worker_threads";
import { Limiter } from "../../util/limiter.js";
import { compressBound, compressFrame } from "../zstd/libzstd.js";
import type { CompressionType } from "./header.js";

// Plain CommonJS evaluated in the worker: it runs the same from dist/ and under tsx.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const zlib = require("node:zlib");
const { level, clusterSize, bound, slots } = workerData;
parentPort.on("message", ({ id, slot, count }) => {
  try {
    const input = Buffer.from(slots[slot].input);
    const output = Buffer.from(slots[slot].output);
    const lengths = [];
    for (let i = 0; i < count; i++) {
      const cluster = input.subarray(i * clusterSize, (i + 1) * clusterSize);
      const into = output.subarray(i * bound, (i + 1) * bound);
      // qemu's qcow2_compress: deflateInit2(level, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY).
      const out = zlib.deflateRawSync(cluster, { level, windowBits: 12, memLevel: 9 });
      // Stored compressed only when that saves something (qemu's rule).
      lengths.push(out.length < clusterSize ? out.copy(into) : -1);
    }
    parentPort.postMessage({ id, lengths });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

/** Shared memory for one batch: the clusters to compress, and room for what they compress to. */
export interface Slot {
  readonly index: number;
  readonly input: Buffer;
  readonly output: Buffer;
}

interface Job {
  id: number;
  slot: Slot;
  count: number;
  resolve: (out: Array<Buffer | null>) => void;
  reject: (err: Error) => void;
}

export class CompressPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<number, Job>();
  private readonly free: Slot[];
  private readonly waiting: Array<(slot: Slot) => void> = [];
  /** Room for one compressed cluster (zstd may expand a little before giving up; deflate output is kept only when smaller). */
  private readonly bound: number;
  private nextId = 0;
  private failure: Error | undefined;
  /** zstd calls at once: one per thread, so libzstd's pooled contexts are reused, not made per call. */
  private readonly zstdCalls: Limiter;

  constructor(
    private readonly codec: CompressionType,
    private readonly level: number,
    threads: number,
    readonly clusterSize: number,
    /** Clusters per batch. */
    readonly batch: number,
    slots: number,
  ) {
    this.bound = codec === "zstd" ? compressBound(clusterSize) : clusterSize;
    this.zstdCalls = new Limiter(threads);
    const shared = Array.from({ length: slots }, () => ({
      input: new SharedArrayBuffer(batch * clusterSize),
      output: new SharedArrayBuffer(batch * this.bound),
    }));
    this.free = shared.map((s, index) => ({ index, input: Buffer.from(s.input), output: Buffer.from(s.output) }));
    const workerData = { level, clusterSize, bound: this.bound, slots: shared };
    for (let i = 0; codec === "zlib" && i < threads; i++) {
      // A small young generation: deflateRawSync's per-call objects are freed soon, not 30 MB later per worker.
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData, resourceLimits: { maxYoungGenerationSizeMb: 2 } });
      worker.on("message", (m: { id: number; lengths?: number[]; error?: string }) => {
        const job = this.running.get(m.id) as Job;
        this.running.delete(m.id);
        if (m.error !== undefined) job.reject(new Error(`${codec} compression: ${m.error}`));
        else job.resolve((m.lengths as number[]).map((length, k) => (length < 0 ? null : job.slot.output.subarray(k * this.bound, k * this.bound + length))));
        // An idle worker must not keep the process alive; a busy one must (its answer is awaited).
        worker.unref();
        this.idle.push(worker);
        this.pump();
      });
      worker.on("error", (err) => this.fail(err));
      worker.unref();
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  /** A free slot to fill with up to `batch` clusters (waits for one to be released). */
  acquire(): Promise<Slot> {
    const slot = this.free.pop();
    if (slot) return Promise.resolve(slot);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(slot: Slot): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }

  /** The first `count` clusters of the slot compressed (views of its output), or null where that does not make them smaller. */
  compress(slot: Slot, count: number): Promise<Array<Buffer | null>> {
    if (this.codec === "zstd") return this.compressZstd(slot, count);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, slot, count, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private compressZstd(slot: Slot, count: number): Promise<Array<Buffer | null>> {
    const { clusterSize, bound } = this;
    return Promise.all(
      Array.from({ length: count }, async (_, k) => {
        const into = slot.output.subarray(k * bound, (k + 1) * bound);
        const cluster = slot.input.subarray(k * clusterSize, (k + 1) * clusterSize);
        const length = await this.zstdCalls.run(() => compressFrame(cluster, into, { level: this.level, checksum: false }));
        return length < clusterSize ? into.subarray(0, length) : null;
      }),
    );
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const job = this.queue.shift() as Job;
      const worker = this.idle.pop() as Worker;
      this.running.set(job.id, job);
      worker.ref();
      worker.postMessage({ id: job.id, slot: job.slot.index, count: job.count });
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of [...this.running.values(), ...this.queue]) job.reject(err);
    this.running.clear();
    this.queue.length = 0;
  }
}
