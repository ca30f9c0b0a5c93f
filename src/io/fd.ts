/**
 * An open file descriptor with promise-returning calls: fs's callback forms,
 * promisified. It keeps what FileSource relied on from node:fs/promises'
 * FileHandle — close() waits for the reads in flight and may be called twice —
 * without loading node:fs/promises, which brings readline and streams along:
 * 3 ms of every command's start-up.
 */
import { close, open, read, readv, stat, type Stats } from "node:fs";
import { promisify } from "node:util";

const openAsync = promisify(open);
const readAsync = promisify(read);
const readvAsync = promisify(readv);
const closeAsync = promisify(close);

export const statPath: (path: string) => Promise<Stats> = promisify(stat);

export class Fd {
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  private constructor(readonly fd: number) {}

  static async open(path: string, flags: number): Promise<Fd> {
    return new Fd(await openAsync(path, flags));
  }

  /** One read(2) (pread) into `buffer` at `offset`: it may return fewer bytes than asked. */
  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: (await this.tracked(() => readAsync(this.fd, buffer, offset, length, position))).bytesRead };
  }

  /** One preadv(2) into `buffers`, one after another, from `position`: it may return fewer bytes than asked. */
  async readv(buffers: Buffer[], position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: (await this.tracked(() => readvAsync(this.fd, buffers, position))).bytesRead };
  }

  /** A call on the descriptor that close() waits for; refused once closing has begun. */
  private async tracked<T>(call: () => Promise<T>): Promise<T> {
    if (this.closing) throw Object.assign(new Error("read after close"), { code: "EBADF" });
    this.inFlight++;
    try {
      return await call();
    } finally {
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  /** Closes once the reads in flight have ended (a descriptor closed under a read could be reused by the next open). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      await closeAsync(this.fd);
    })();
    return this.closing;
  }
}
