import type { Command } from "commander";
import { hashSource, hashStream, type HashProgress } from "../capture/hash-source.js";
import { formatHashLines, parseHashList } from "../capture/hasher.js";
import { openImageOrStream } from "../capture/image-source.js";
import { StreamSource } from "../io/stream-source.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { printJson, warn } from "./output.js";
import { parseCount } from "../util/units.js";
import { writeStdout } from "./stdout.js";

const HELP = `
A compressed or virtual-disk image (.zst .xz .gz .bz2 .qcow2, found by its
magic bytes) is hashed as the disk it holds, as \`zstd -dc disk.img.zst |
sha256sum\` or \`qemu-img convert -O raw\` then sha256sum would: --raw hashes
the file's own bytes, as sha256sum does.

IMAGE - (or /dev/stdin, a pipe, a FIFO, a character device such as a tape)
is read to its end, as sha256sum reads it: \`cat disk.img | platter hash -\`.
A stream is hashed as it is, compressed or not.`;

export function registerHash(program: Command): Command {
  return program
    .command("hash")
    .description("hash an image file, a block device or a stream (holes of sparse files are not read)")
    .argument("<image>", "file, block device, pipe, or - for standard input")
    .option("--hash <list>", "algorithms: md5, sha1, sha256, sha512, comma-separated", "sha256")
    .option("--part <n>", "hash partition N only (Linux numbering, as platter parts lists it)")
    .option("--raw", "hash the file's bytes as they are, not the disk a compressed or virtual-disk image holds")
    .option("--json", "print {algorithm: hex} as JSON")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress")
    .addHelpText("after", HELP)
    .action(async (image: string, opts: { hash: string; part?: string; raw?: boolean; json?: boolean; progress?: boolean; quiet?: boolean }) => {
      const algorithms = parseHashList(opts.hash);
      const progress = new ProgressLine(opts);
      const started = Date.now();
      const onProgress = (p: HashProgress) => progress.update(() => `hashing ${describeTransfer(p.done, p.total, started)}`);
      const source = await openImageOrStream(image, {
        direct: "cold",
        raw: opts.raw,
        part: opts.part === undefined ? undefined : parseCount(opts.part, "--part", 1),
        onWarning: warn,
      });
      let digests: Record<string, string>;
      try {
        digests = source instanceof StreamSource ? await hashStream(source, algorithms, onProgress) : await hashSource(source, algorithms, onProgress);
      } finally {
        progress.done();
        await source.close();
      }
      if (opts.json) printJson(digests);
      else writeStdout(formatHashLines(digests, image));
    });
}
