import type { Command } from "commander";
import { hashSource } from "../capture/hash-source.js";
import { formatHashLines, parseHashList } from "../capture/hasher.js";
import { openSource } from "../io/file-source.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { printJson } from "./output.js";

export function registerHash(program: Command): Command {
  return program
    .command("hash")
    .description("hash an image file or a block device (holes of sparse files are not read)")
    .argument("<image>", "file or block device")
    .option("--hash <list>", "algorithms: md5, sha1, sha256, sha512, comma-separated", "sha256")
    .option("--json", "print {algorithm: hex} as JSON")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress")
    .action(async (image: string, opts: { hash: string; json?: boolean; progress?: boolean; quiet?: boolean }) => {
      const algorithms = parseHashList(opts.hash);
      const source = await openSource(image, { direct: "cold" });
      const progress = new ProgressLine(opts);
      const started = Date.now();
      try {
        const digests = await hashSource(source, algorithms, (p) =>
          progress.update(() => `hashing ${describeTransfer(p.done, p.total, started)}`),
        );
        progress.done();
        if (opts.json) {
          printJson(digests);
        } else {
          process.stdout.write(formatHashLines(digests, image));
        }
      } finally {
        await source.close();
      }
    });
}
