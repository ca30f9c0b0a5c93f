import { promises as fsp } from "node:fs";
import { basename } from "node:path";
import type { Command } from "commander";
import { StreamSink } from "../io/file-sink.js";
import { BuildStopped, buildIso } from "../fs/iso9660/writer/index.js";
import { HybridSystemArea } from "../fs/iso9660/writer/hybrid.js";
import { ioError, UsageError } from "../errors.js";
import { parseCount } from "../util/units.js";
import { VERSION } from "../version.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { printJson, warn } from "./output.js";
import { optimiseLater } from "./optimise-later.js";
import { interruptOnSignals } from "./signals.js";

interface IsoFlags {
  output: string;
  volid?: string;
  rock: boolean;
  joliet: boolean;
  biosBoot?: string;
  efiBoot?: string;
  bootLoadSize?: string;
  hybrid?: boolean;
  hybridMbr?: string;
  skipUnreadable?: boolean;
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

/** SOURCE_DATE_EPOCH (reproducible-builds.org): whole seconds, else a usage error. */
function sourceDateEpoch(): number | undefined {
  const text = process.env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === "") return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`SOURCE_DATE_EPOCH='${text}' is not a number of seconds`);
  return Number(text);
}

/** The first bytes of a small file (boot code); a missing one is a usage error. */
async function readSmallFile(path: string, what: string): Promise<Buffer> {
  try {
    const handle = await fsp.open(path, "r");
    try {
      const buf = Buffer.alloc(512);
      const { bytesRead } = await handle.read(buf, 0, 512, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new UsageError(ioError(err, `${what} ${path}`).message);
  }
}

/**
 * A label from the folder name: "my-files" -> "MY_FILES". At most 16
 * characters, so the Joliet volume id (16 at most) says the same, and a label
 * nobody chose draws no warning.
 */
function defaultLabel(source: string): string {
  const name = basename(source.replace(/\/+$/, "")) || "CDROM";
  return name.toUpperCase().replace(/[^A-Z0-9_]/g, "_").slice(0, 16);
}

export function registerIso(program: Command): Command {
  return program
    .command("iso")
    .description("build an ISO 9660 image (Rock Ridge + Joliet) from folders; streams, so -o - works")
    .argument("<source...>", "folders whose contents become the image's root")
    .requiredOption("-o, --output <file>", "image to write, or - for stdout")
    .option("-V, --volid <label>", "volume label (default: the first folder's name)")
    .option("--no-rock", "no Rock Ridge (POSIX names, modes, owners, symlinks)")
    .option("--no-joliet", "no Joliet tree (Windows names)")
    .option("--bios-boot <file>", "El Torito no-emulation BIOS boot image (gets a boot info table)")
    .option("--efi-boot <file>", "EFI system partition image, as a second El Torito entry")
    .option("--boot-load-size <sectors>", "512-byte sectors the BIOS loads (default 4)")
    .option("--hybrid", "also a disk image (GPT + protective MBR, the EFI image as ESP) that boots from a USB stick")
    .option("--hybrid-mbr <file>", "with --hybrid: MBR boot code for BIOSes (isolinux's isohdpfx.bin), pointed at --bios-boot")
    .option("--skip-unreadable", "leave out files and folders that cannot be read, with a warning")
    .option("--json", "print a summary as JSON")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress")
    .action(async (sources: string[], opts: IsoFlags) => {
      await optimiseLater();
      const toStdout = opts.output === "-";
      if (toStdout && process.stdout.isTTY) throw new UsageError("refusing to write an image to a terminal; use -o FILE or a pipe");
      if (toStdout && opts.json) throw new UsageError("--json needs stdout, which -o - uses for the image");
      const loadSectors = opts.bootLoadSize === undefined ? undefined : parseCount(opts.bootLoadSize, "--boot-load-size", 1);
      if (loadSectors !== undefined && loadSectors > 0xffff) throw new UsageError("--boot-load-size must be at most 65535");
      if (opts.bootLoadSize !== undefined && !opts.biosBoot) throw new UsageError("--boot-load-size needs --bios-boot");
      if (opts.hybridMbr && !opts.hybrid) throw new UsageError("--hybrid-mbr needs --hybrid");
      if (opts.hybridMbr && !opts.biosBoot) throw new UsageError("--hybrid-mbr needs --bios-boot: its code loads the BIOS boot image");
      const mbrBootCode = opts.hybridMbr ? await readSmallFile(opts.hybridMbr, "--hybrid-mbr") : undefined;

      const progress = new ProgressLine(opts);
      const started = Date.now();
      const signals = interruptOnSignals();
      const sink = toStdout ? new StreamSink(process.stdout) : null;
      try {
        const result = await buildIso(sink ?? opts.output, {
          sources,
          volumeId: opts.volid ?? defaultLabel(sources[0]),
          rockRidge: opts.rock,
          joliet: opts.joliet,
          biosBoot: opts.biosBoot ? { path: opts.biosBoot, ...(loadSectors ? { loadSectors } : {}) } : undefined,
          efiBoot: opts.efiBoot ? { path: opts.efiBoot } : undefined,
          sourceDateEpoch: sourceDateEpoch(),
          applicationId: `PLATTER ${VERSION}`,
          skipUnreadable: opts.skipUnreadable,
          systemArea: opts.hybrid ? new HybridSystemArea(mbrBootCode ? { mbrBootCode } : {}) : undefined,
          signal: signals.signal,
          onWarning: warn,
          onProgress: (p) =>
            progress.update(
              () => (p.phase === "scan" ? `scanning: ${p.done} entries` : `writing ${describeTransfer(p.done, p.total, started)}`),
              p.phase === "write" && p.done === p.total,
            ),
        });
        progress.done();
        await sink?.close();
        if (opts.json) {
          printJson({ output: opts.output, size: result.size, files: result.files, folders: result.folders, relocated: result.relocated, warnings: result.warnings });
        }
      } catch (err) {
        progress.done();
        await sink?.close().catch(() => {});
        if (!(err instanceof BuildStopped)) throw err;
        process.stderr.write(`platter: ${err.message}\n`);
        process.exitCode = 128 + (signals.received === "SIGTERM" ? 15 : 2);
      } finally {
        signals.dispose();
      }
    });
}
