/**
 * The few error classes every command maps to an exit code (see cli/main.ts).
 * A message is one line a user can act on; it never carries a stack trace.
 */
export abstract class PlatterError extends Error {
  abstract readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The user asked for something impossible or malformed: exit 2. */
export class UsageError extends PlatterError {
  readonly exitCode = 2;
}

/** The image is wrong: a bad signature, a field out of range, a truncated structure. */
export class CorruptImageError extends PlatterError {
  readonly exitCode = 1;
}

/** The input is valid but platter does not handle it yet; the message says what. */
export class UnsupportedError extends PlatterError {
  readonly exitCode = 1;
}

/** An I/O failure on a file or device. `code` is the errno name (EIO, ENOENT...). */
export class DeviceError extends PlatterError {
  readonly exitCode = 1;
  readonly code: string | undefined;
  constructor(message: string, code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A copy that failed part-way: its first `copied` bytes reached the target before the error. */
export class PartialCopyError extends DeviceError {
  constructor(
    message: string,
    code: string | undefined,
    readonly copied: number,
    options?: { cause?: unknown },
  ) {
    super(message, code, options);
  }
}

/** errno name of a Node system error, if it is one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Turn a Node fs error into a DeviceError whose message names the path. */
export function ioError(err: unknown, what: string): PlatterError {
  if (err instanceof PlatterError) return err;
  const code = errnoCode(err);
  const reason: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
    EIO: "input/output error",
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    EBUSY: "device or resource busy",
    EEXIST: "already exists",
    ENXIO: "no such device or address",
    EINVAL: "invalid argument",
  };
  const text = (code && reason[code]) ?? (err instanceof Error ? err.message : String(err));
  return new DeviceError(`${what}: ${text}`, code, { cause: err });
}

/** Stopped by Ctrl-C or SIGTERM before the work was done: exit 128 + the signal's number, as a shell reports it. */
export class InterruptedError extends PlatterError {
  readonly exitCode: number;
  constructor(message: string, signal: NodeJS.Signals | undefined = "SIGINT") {
    super(message);
    this.exitCode = signal === "SIGTERM" ? 143 : 130;
  }
}
