/**
 * zstd compression on every core: libzstd's one-shot compress is a
 * synchronous call, so each runs in a worker thread of a small pool. zlib
 * needs none of this: node:zlib's async calls already run on libuv's pool.
 */
import { Worker } from "node:worker_threads";
import { ZSTD_BINDING_PATH } from "./zstd.js";

// Plain CommonJS evaluated in the worker: it runs the same from dist/ and under tsx.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const zstd = require(workerData.binding);
parentPort.on("message", ({ id, data, level, limit }) => {
  try {
    const out = Buffer.allocUnsafe(zstd.compressBound(data.length));
    const length = zstd.compress(out, data, level);
    // Worth storing compressed only when it saves something (qemu's rule for a cluster).
    if (length > limit) parentPort.postMessage({ id, out: null });
    else parentPort.postMessage({ id, out: out.subarray(0, length) });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

interface Job {
  id: number;
  data: Uint8Array;
  level: number;
  limit: number;
  resolve: (out: Buffer | null) => void;
  reject: (err: Error) => void;
}

export class ZstdPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<number, Job>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(threads: number) {
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { binding: ZSTD_BINDING_PATH } });
      worker.on("message", (m: { id: number; out?: Uint8Array | null; error?: string }) => {
        const job = this.running.get(m.id) as Job;
        this.running.delete(m.id);
        if (m.error !== undefined) job.reject(new Error(`zstd: ${m.error}`));
        else job.resolve(m.out ? Buffer.from(m.out.buffer, m.out.byteOffset, m.out.length) : null);
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

  /**
   * `data` compressed at `level`, or null when that takes more than `limit`
   * bytes. `data` is handed to the worker (transferred, not copied): the
   * caller must not touch it again.
   */
  compress(data: Buffer, level: number, limit: number): Promise<Buffer | null> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, data, level, limit, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const job = this.queue.shift() as Job;
      const worker = this.idle.pop() as Worker;
      this.running.set(job.id, job);
      worker.ref();
      const whole = job.data.byteOffset === 0 && job.data.byteLength === job.data.buffer.byteLength;
      const data = whole ? job.data : new Uint8Array(job.data);
      worker.postMessage({ id: job.id, data, level: job.level, limit: job.limit }, [data.buffer as ArrayBuffer]);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of [...this.running.values(), ...this.queue]) job.reject(err);
    this.running.clear();
    this.queue.length = 0;
  }
}
