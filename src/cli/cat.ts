import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { escapeName } from "../fs/names.js";
import { resolvePath } from "../fs/path.js";
import { StreamSink } from "../io/file-sink.js";
import { openImageFilesystem } from "./image-fs.js";

const CHUNK = 1 << 20;

export function registerCat(program: Command): Command {
  return program
    .command("cat")
    .description("write a file from inside a filesystem image to stdout")
    .argument("<image>", "image file or block device")
    .argument("<path>", "file inside the filesystem (symbolic links are followed)")
    .option("--part <n>", "partition number (Linux numbering)")
    .action(async (image: string, path: string, opts: { part?: string }) => {
      const opened = await openImageFilesystem(image, opts.part);
      try {
        const { fs } = opened;
        const { node, path: resolved } = await resolvePath(fs, path);
        if (node.stat.type === "dir") throw new UsageError(`${escapeName(resolved)}: is a directory`);
        if (node.stat.type !== "file") throw new UsageError(`${escapeName(resolved)}: not a regular file`);
        const out = new StreamSink();
        const size = node.stat.size;
        for (let pos = 0; pos < size; pos += CHUNK) {
          await out.write(pos, await fs.read(node, pos, Math.min(CHUNK, size - pos)));
        }
      } finally {
        await opened.close();
      }
    });
}
