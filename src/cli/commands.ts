import type { Command } from "commander";

/** A command module adds itself to the program and returns its Command. */
export type RegisterCommand = (program: Command) => Command;

/** A command as `platter --help` lists it: "capture [options] <source> <dest>" and its description. */
export type Listing = [term: string, description: string];

export interface CommandModule {
  names: string[];
  /**
   * The module in src/cli/ whose register* functions add these commands.
   * Imported only when argv names one of them (loading every command's
   * library costs more start-up than a small capture); the built CLI has one
   * bundle per module (scripts/bundle-cli.mjs).
   */
  module: string;
  /**
   * One line per name for `platter --help`, so the listing loads no command
   * module (test/cli/commands.test.ts checks it against the modules).
   */
  listing: Listing[];
}

/** A command module's registrations, by its name in `commands` ("parts"). */
export type LoadModule = (module: string) => Promise<RegisterCommand[]>;

/** What a command module exports that adds commands: its register* functions (mount has two). */
export function registrationsOf(exports: Record<string, unknown>): RegisterCommand[] {
  return Object.entries(exports)
    .filter(([name, value]) => name.startsWith("register") && typeof value === "function")
    .map(([, value]) => value as RegisterCommand);
}

/**
 * Every command, in the order `platter --help` lists them. A new command is
 * one entry: its names, its module, its listing line.
 */
export const commands: CommandModule[] = [
  {
    names: ["capture"],
    module: "capture",
    listing: [["capture [options] <source> <dest>", "image a drive or file like GNU ddrescue: good areas first, then bad sectors one by one"]],
  },
  {
    names: ["dd"],
    module: "dd",
    listing: [["dd <operands...>", "copy with dd's syntax and semantics (if= of= bs= count= skip= seek= conv= status=)"]],
  },
  {
    names: ["parts"],
    module: "parts",
    listing: [["parts [options] <image>", "list the partitions of an image or device: where they are, their type and filesystem"]],
  },
  {
    names: ["mount", "umount"],
    module: "mount",
    listing: [
      ["mount [options] <image> <mountpoint>", "mount a partition of an image read-only: a loop device as root, else (or with --fuse) through FUSE"],
      ["umount <mountpoint>", "unmount what platter mount mounted: detach its loop device, or end its FUSE server"],
    ],
  },
  {
    names: ["ls"],
    module: "ls",
    listing: [["ls [options] <image> [path]", "list files inside a filesystem image (ext2/3/4, FAT, exFAT, squashfs, ISO 9660), without mounting it"]],
  },
  {
    names: ["cat"],
    module: "cat",
    listing: [["cat [options] <image> <path>", "write a file from inside a filesystem image to stdout"]],
  },
  {
    names: ["extract"],
    module: "extract",
    listing: [["extract [options] <image> [path]", "copy files out of a filesystem image into a folder (modes, mtimes, links kept; never writes outside it)"]],
  },
  {
    names: ["hash"],
    module: "hash",
    listing: [["hash [options] <image>", "hash an image file, a block device or a stream (holes of sparse files are not read)"]],
  },
  {
    names: ["iso"],
    module: "iso",
    listing: [["iso [options] <source...>", "build an ISO 9660 image (Rock Ridge + Joliet) from folders; streams, so -o - works"]],
  },
  {
    names: ["info"],
    module: "info",
    listing: [["info [options] <image>", "what an image is: format, sizes, and what platter finds in it (ISO 9660 ids, El Torito boot entries)"]],
  },
  {
    names: ["convert"],
    module: "convert",
    listing: [["convert [options] <source> <dest>", "convert an image between raw, compressed (gz, xz, zst, bz2) and virtual-disk formats"]],
  },
  {
    names: ["restore"],
    module: "restore",
    listing: [["restore [options] <image> <target>", "write an image back to a disk (or a file): only its data, with guards against the wrong disk"]],
  },
  {
    names: ["verify"],
    module: "verify",
    listing: [["verify [options] <image> <target>", "compare an image with a disk or another image, byte for byte (exit 1 when they differ)"]],
  },
  {
    names: ["check"],
    module: "check",
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

/** The command module `argv` names (`platter help capture` names capture); none for --help, `help` or a typo. */
export function namedModule(argv: readonly string[]): CommandModule | undefined {
  const name = argv[0] === "help" && argv.length > 1 ? argv[1] : argv[0];
  return commands.find((c) => c.names.includes(name ?? ""));
}

/** The registrations for `argv`: its command module's when it names one, else every command by its listing line (help, typos). */
export async function loadCommands(argv: readonly string[], load: LoadModule): Promise<RegisterCommand[]> {
  const named = namedModule(argv);
  return named ? load(named.module) : commands.flatMap((m) => m.listing.map(listed));
}
