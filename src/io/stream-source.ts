/**
 * Sources that are read front to back, once: a pipe or FIFO, a character
 * device (/dev/zero, /dev/urandom, a tape), a socket, standard input. They
 * have no size and cannot seek, so they are not BlockSources: commands that
 * need random access refuse them (FileSource.open), and hash, dd and
 * capture read them to their end.
 *
 * A FIFO's open blocks until a writer comes, and a read blocks until data
 * does; both run on libuv's thread pool, where nothing can cancel them. The
 * open is left to the first read, so a command gets ready (checks its
 * flags, creates its outputs) before it waits. With an AbortSignal, a
 * pending open or read gives up (rejects with the signal's reason) when the
 * signal fires, so Ctrl-C still ends the command; the buffer that read was
 * filling must then not be reused.
 */
import { access, constants, type Stats, close as closeFd, fstat, open as openFd, read as readFd, stat } from "node:fs";
import { promisify } from "node:util";
import { ioError, UsageError } from "../errors.js";
import { shellQuote } from "../util/shell.js";

const fstatAsync = promisify(fstat);
const statAsync = promisify(stat);
const openAsync = promisify(openFd);
const closeAsync = promisify(closeFd);
const accessAsync = promisify(access);

/** What a stream is, for messages ("X is a pipe (FIFO)"). */
export type StreamKind = "pipe (FIFO)" | "character device" | "socket";

/** The stream kind of a stat, or undefined for a file, a block device or a folder. */
export function streamKind(st: Stats): StreamKind | undefined {
  if (st.isFIFO()) return "pipe (FIFO)";
  if (st.isCharacterDevice()) return "character device";
  if (st.isSocket()) return "socket";
  return undefined;
}

/** Whether `path` is read as a stream: "-" (standard input), or a pipe, character device or socket. */
export async function isStream(path: string): Promise<boolean> {
  if (path === "-") return true;
  try {
    return streamKind(await statAsync(path)) !== undefined;
  } catch {
    return false; // missing: the file opener says so
  }
}

/** The refusal of a command that needs random access, with the way out. */
export function needsRandomAccess(path: string, kind: StreamKind): UsageError {
  return new UsageError(
    `${path} is a ${kind}: this needs a file or block device (random access); use \`platter capture ${shellQuote(path)} image.img\` first`,
  );
}

/** Read sequentially: one read(2) at a time. */
export interface SequentialSource {
  readonly name: string;
  /**
   * One read(2) of at most `length` bytes into `into` (from index 0), as dd
   * does it: a pipe may return fewer bytes than asked. 0 at the end of the
   * stream. A failure is a DeviceError whose `code` is the errno name.
   */
  readOnce(into: Buffer, length?: number): Promise<number>;
  close(): Promise<void>;
}

/** Fill `into` up to `length` bytes unless the stream ends first; returns the bytes read. */
export async function readFull(source: SequentialSource, into: Buffer, length = into.length): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await source.readOnce(into.subarray(done), length - done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** The file descriptor a path names in this process: "-" and /dev/stdin are 0, /dev/fd/N and /proc/self/fd/N are N. */
function ownDescriptor(path: string): number | undefined {
  if (path === "-" || path === "/dev/stdin") return 0;
  const m = /^\/(?:dev|proc\/self)\/fd\/(\d+)$/.exec(path);
  return m ? Number(m[1]) : undefined;
}

/** How a descriptor left non-blocking by another program is waited for: poll, backing off up to this. */
const MAX_RETRY_MS = 50;

export interface OpenStreamOptions {
  /** Gives up a pending open or read (see the header). */
  signal?: AbortSignal;
}

export class StreamSource implements SequentialSource {
  /** Bytes read so far: where the next read starts, for messages. */
  position = 0;
  /** An open or read that the signal gave up on is still pending on the thread pool. */
  private abandoned = false;
  /** The descriptor, once the open is done. */
  private opened: number | undefined;

  private constructor(
    readonly name: string,
    /** The descriptor, once its open is done: a FIFO's waits for a writer, so it is awaited by the first read. */
    private readonly fd: Promise<number>,
    /** Borrowed (standard input, /dev/fd/N): not closed by close(). */
    private readonly borrowed: boolean,
    private readonly signal: AbortSignal | undefined,
  ) {
    fd.then(
      (n) => (this.opened = n),
      () => {},
    );
  }

  /**
   * Open a stream: "-" is standard input; /dev/stdin and /dev/fd/N read the
   * descriptor this process already has (a socket cannot be opened by path).
   * Returns before a FIFO has a writer: the first read waits for one.
   */
  static async open(path: string, options: OpenStreamOptions = {}): Promise<StreamSource> {
    const name = path === "-" ? "standard input" : path;
    const own = ownDescriptor(path);
    if (own !== undefined) {
      try {
        await fstatAsync(own);
      } catch (err) {
        throw ioError(err, name);
      }
      return new StreamSource(name, Promise.resolve(own), true, options.signal);
    }
    let st: Stats;
    try {
      st = await statAsync(path);
      await accessAsync(path, constants.R_OK);
    } catch (err) {
      throw ioError(err, path);
    }
    if (st.isSocket()) throw new UsageError(`${path} is a socket: platter reads a socket only as standard input (- or /dev/stdin)`);
    const fd = openAsync(path, constants.O_RDONLY).catch((err: unknown) => {
      throw ioError(err, path);
    });
    fd.catch(() => {}); // reported by the first read
    return new StreamSource(name, fd, false, options.signal);
  }

  async readOnce(into: Buffer, length = into.length): Promise<number> {
    if (length === 0) return 0;
    const fd = await unlessAborted(this.fd, this.signal, this.abandon);
    for (let wait = 1; ; wait = Math.min(wait * 2, MAX_RETRY_MS)) {
      try {
        const n = await unlessAborted(readOnce(fd, into, length), this.signal, this.abandon);
        this.position += n;
        return n;
      } catch (err) {
        if (this.signal?.aborted) throw err;
        // A descriptor another program made non-blocking has nothing yet: wait for it, as a blocking read would.
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw ioError(err, `${this.name}: read at offset ${this.position}`);
        await unlessAborted(new Promise((resolve) => setTimeout(resolve, wait)), this.signal);
      }
    }
  }

  private readonly abandon = () => {
    this.abandoned = true;
  };

  async close(): Promise<void> {
    // An open still pending (a FIFO with no writer) or a read given up on: the process is ending anyway.
    if (this.borrowed || this.abandoned || this.opened === undefined) return;
    await closeAsync(this.opened);
  }
}

/** `op`, or the signal's reason as soon as the signal fires; `op` is then abandoned, still pending. */
export function unlessAborted<T>(op: Promise<T>, signal: AbortSignal | undefined, onAbandon?: () => void): Promise<T> {
  if (!signal) return op;
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      op.catch(() => {});
      onAbandon?.();
      reject(signal.reason);
    };
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    op.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", abort);
        reject(err);
      },
    );
  });
}

function readOnce(fd: number, into: Buffer, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    readFd(fd, into, 0, length, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}
