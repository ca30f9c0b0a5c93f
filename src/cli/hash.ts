import type { Command } from "commander";
import { hashSource, hashStream, type HashProgress } from "../capture/hash-source.js";
import { formatHashLines, parseHashList } from "../capture/hasher.js";
import { openSource } from "../io/file-source.js";
import { isStream, StreamSource } from "../io/stream-source.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { printJson } from "./output.js";

const HELP = `
IMAGE - (or /dev/stdin, a pipe, a FIFO, a character device such as a tape)
is read to its end, as sha256sum reads it: \`cat disk.img | platter hash -\`.`;

export function registerHash(program: Command): Command {
  return program
    .command("hash")
    .description("hash an image file, a block device or a stream (holes of sparse files are not read)")
    .argument("<image>", "file, block device, pipe, or - for standard input")
    .option("--hash <list>", "algorithms: md5, sha1, sha256, sha512, comma-separated", "sha256")
    .option("--json", "print {algorithm: hex} as JSON")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress")
    .addHelpText("after", HELP)
    .action(async (image: string, opts: { hash: string; json?: boolean; progress?: boolean; quiet?: boolean }) => {
      const algorithms = parseHashList(opts.hash);
      const progress = new ProgressLine(opts);
      const started = Date.now();
      const onProgress = (p: HashProgress) => progress.update(() => `hashing ${describeTransfer(p.done, p.total, started)}`);
      const source = (await isStream(image)) ? await StreamSource.open(image) : await openSource(image, { direct: "cold" });
      let digests: Record<string, string>;
      try {
        digests = source instanceof StreamSource ? await hashStream(source, algorithms, onProgress) : await hashSource(source, algorithms, onProgress);
      } finally {
        progress.done();
        await source.close();
      }
      if (opts.json) printJson(digests);
      else process.stdout.write(formatHashLines(digests, image));
    });
}
