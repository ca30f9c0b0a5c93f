import type { Command } from "commander";

/** A command module adds itself to the program and returns its Command. */
export type RegisterCommand = (program: Command) => Command;

/** A command as `platter --help` lists it: "capture [options] <source> <dest>" and its description. */
export type Listing = [term: string, description: string];

interface CommandModule {
  names: string[];
  /** Imported only when needed: loading every command's library costs more start-up than a small capture. */
  load(): Promise<RegisterCommand[]>;
  /**
   * One line per name for `platter --help`, so the listing loads no command
   * module (test/cli/commands.test.ts checks it against the modules). A
   * command without one is loaded for the listing.
   */
  listing?: Listing[];
}

/**
 * Every command, in the order `platter --help` lists them. A new command is
 * one entry: its names, its module's register function, its listing line.
 */
export const commands: CommandModule[] = [
  {
    names: ["capture"],
    load: async () => [(await import("./capture.js")).registerCapture],
    listing: [["capture [options] <source> <dest>", "image a drive or file like GNU ddrescue: good areas first, then bad sectors one by one"]],
  },
  {
    names: ["dd"],
    load: async () => [(await import("./dd.js")).registerDd],
    listing: [["dd <operands...>", "copy with dd's syntax and semantics (if= of= bs= count= skip= seek= conv= status=)"]],
  },
  {
    names: ["parts"],
    load: async () => [(await import("./parts.js")).registerParts],
    listing: [["parts [options] <image>", "list the partitions of an image or device: where they are, their type and filesystem"]],
  },
  {
    names: ["mount", "umount"],
    load: async () => {
      const m = await import("./mount.js");
      return [m.registerMount, m.registerUmount];
    },
    listing: [
      ["mount [options] <image> <mountpoint>", "mount a partition of an image read-only: a loop device as root, else (or with --fuse) through FUSE"],
      ["umount <mountpoint>", "unmount what platter mount mounted: detach its loop device, or end its FUSE server"],
    ],
  },
  {
    names: ["ls"],
    load: async () => [(await import("./ls.js")).registerLs],
    listing: [["ls [options] <image> [path]", "list files inside a filesystem image (ext2/3/4, FAT, exFAT, squashfs, ISO 9660), without mounting it"]],
  },
  {
    names: ["cat"],
    load: async () => [(await import("./cat.js")).registerCat],
    listing: [["cat [options] <image> <path>", "write a file from inside a filesystem image to stdout"]],
  },
  {
    names: ["extract"],
    load: async () => [(await import("./extract.js")).registerExtract],
    listing: [["extract [options] <image> [path]", "copy files out of a filesystem image into a folder (modes, mtimes, links kept; never writes outside it)"]],
  },
  {
    names: ["hash"],
    load: async () => [(await import("./hash.js")).registerHash],
    listing: [["hash [options] <image>", "hash an image file, a block device or a stream (holes of sparse files are not read)"]],
  },
  {
    names: ["iso"],
    load: async () => [(await import("./iso.js")).registerIso],
    listing: [["iso [options] <source...>", "build an ISO 9660 image (Rock Ridge + Joliet) from folders; streams, so -o - works"]],
  },
  {
    names: ["info"],
    load: async () => [(await import("./info.js")).registerInfo],
    listing: [["info [options] <image>", "what an image is: format, sizes, and what platter finds in it (ISO 9660 ids, El Torito boot entries)"]],
  },
  {
    names: ["convert"],
    load: async () => [(await import("./convert.js")).registerConvert],
    listing: [["convert [options] <source> <dest>", "convert an image between raw, compressed (gz, xz, zst, bz2) and virtual-disk formats"]],
  },
  {
    names: ["restore"],
    load: async () => [(await import("./restore.js")).registerRestore],
    listing: [["restore [options] <image> <target>", "write an image back to a disk (or a file): only its data, with guards against the wrong disk"]],
  },
  {
    names: ["verify"],
    load: async () => [(await import("./verify.js")).registerVerify],
    listing: [["verify [options] <image> <target>", "compare an image with a disk or another image, byte for byte (exit 1 when they differ)"]],
  },
  {
    names: ["check"],
    load: async () => [(await import("./check.js")).registerCheck],
    listing: [["check [options] <image>", "check a qcow2, VHDX, VMDK, VHD or compressed image for corruption and leaks, as qemu-img check does"]],
  },
];

const listedTerms = new WeakMap<Command, string>();

/** A command that is only listed: argv does not name it, so it never runs. */
function listed([term, description]: Listing): RegisterCommand {
  return (program) => {
    const command = program.command(term.split(" ")[0]).description(description);
    listedTerms.set(command, term);
    return command;
  };
}

/** The help listing's term of a command registered from its listing line (commander builds it from arguments the stub lacks). */
export function listedTerm(command: Command): string | undefined {
  return listedTerms.get(command);
}

/**
 * The registrations for `argv`: its command's when it names one (`platter
 * help capture` names capture); else every command by its listing line
 * (help, typos), loading only commands that have none.
 */
export async function loadCommands(argv: string[]): Promise<RegisterCommand[]> {
  const name = argv[0] === "help" && argv.length > 1 ? argv[1] : argv[0];
  const named = commands.filter((c) => c.names.includes(name ?? ""));
  if (named.length > 0) return (await Promise.all(named.map((m) => m.load()))).flat();
  return (await Promise.all(commands.map(async (m) => (m.listing ? m.listing.map(listed) : m.load())))).flat();
}
