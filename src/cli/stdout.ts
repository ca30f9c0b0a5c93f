/**
 * Standard output without paying for it at start-up. process.stdout is built
 * on first use, and building it loads Node's stream machinery: 4-5 ms, a
 * tenth of what `platter parts` costs above bare Node. So short output goes
 * straight to fd 1 (writeStdout), and the stream is built only by what needs
 * one (cat, an image to a pipe), with its EPIPE handler attached then.
 */
import { writeSync } from "node:fs";

const EXIT_OK = 0;
/** Once anything went through process.stdout, everything does: output stays in order. */
let direct = true;

/** `platter … | head`: the reader left, which is not a failure. */
function onBrokenPipe(err: NodeJS.ErrnoException): void {
  if (err.code === "EPIPE") process.exit(EXIT_OK);
}

/** Make process.stdout, when something first asks for it, come with the EPIPE handler (installed once, by runMain). */
export function handleBrokenPipeOnFirstUse(): void {
  const original = Object.getOwnPropertyDescriptor(process, "stdout");
  if (!original?.get || !original.configurable) {
    process.stdout.on("error", onBrokenPipe);
    return;
  }
  const build = original.get;
  Object.defineProperty(process, "stdout", {
    configurable: true,
    enumerable: original.enumerable,
    get() {
      const stream = build.call(process) as NodeJS.WriteStream;
      Object.defineProperty(process, "stdout", { configurable: true, enumerable: original.enumerable, value: stream, writable: false });
      stream.on("error", onBrokenPipe);
      direct = false;
      return stream;
    },
  });
}

/**
 * Write `text` to stdout: with write(2) while that takes it (a file, a
 * terminal, a blocking pipe), through process.stdout from the first time it
 * would block. False when process.stdout asks the caller to wait for "drain".
 */
export function writeStdout(text: string): boolean {
  if (!direct) return process.stdout.write(text);
  const data = Buffer.from(text);
  let done = 0;
  try {
    while (done < data.length) done += writeSync(1, data, done);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EPIPE") process.exit(EXIT_OK);
    if (code !== "EAGAIN") throw err;
    return process.stdout.write(data.subarray(done));
  }
}
