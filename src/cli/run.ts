/**
 * The command line: builds the program from the command modules argv names,
 * runs it, and is the only place that turns errors into messages and exit codes:
 * 0 success, 1 failure, 2 usage error, 3 capture finished with unreadable sectors.
 */
import type { Command } from "commander";
import { PlatterError } from "../errors.js";
import { VERSION } from "../version.js";
import { handleBrokenPipeOnFirstUse, writeStdout } from "./stdout.js";
import { listedTerm, loadCommands, type LoadModule, type RegisterCommand } from "./commands.js";

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** Answered before commander is even loaded: it is most of what `platter --version` would cost. */
const VERSION_FLAGS = ["-V", "--version"];

type Commander = typeof import("commander");

function buildProgram({ Command, Help }: Commander, registrations: RegisterCommand[]): Command {
  const program = new Command("platter")
    .description("disk and disc images: capture, partitions, ISO 9660, filesystems")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    // Program options only before the command name, so commands may reuse letters (`iso -V LABEL`).
    .enablePositionalOptions()
    .configureOutput({ outputError: (text, write) => write(`platter: ${text.replace(/^error: /, "")}`) })
    .configureHelp({ subcommandTerm: (command) => listedTerm(command) ?? new Help().subcommandTerm(command) })
    .exitOverride();
  for (const register of registrations) {
    register(program).exitOverride();
  }
  return program;
}

/** Map anything thrown to one stderr line and an exit code. */
function reportError(err: unknown, { CommanderError }: Commander): number {
  if (err instanceof CommanderError) {
    // Commander has printed the help, the version or its message. It exits 0 for
    // --help, `help` and --version, 1 for the rest: a bad flag, or no command named.
    return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (err instanceof PlatterError) {
    process.stderr.write(`platter: ${err.message}\n`);
    return err.exitCode;
  }
  const code = (err as { code?: unknown })?.code;
  if (code === "EPIPE") return EXIT_OK; // `platter cat ... | head`
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`platter: internal error: ${message}\n`);
  if (process.env.PLATTER_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return EXIT_FAILURE;
}

/** Run the command line on `argv` (no node and script names); `load` gives a command module's registrations. */
export async function runCli(argv: string[], load: LoadModule): Promise<number> {
  // As commander does: the version option, first, wins over anything after it.
  if (VERSION_FLAGS.includes(argv[0] ?? "")) {
    writeStdout(`${VERSION}\n`);
    return EXIT_OK;
  }
  const commander = await import("commander");
  try {
    const program = buildProgram(commander, await loadCommands(argv, load));
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT_OK;
  } catch (err) {
    return reportError(err, commander);
  }
}

/** Run the command line on this process's arguments and set its exit code. */
export function runMain(load: LoadModule): void {
  handleBrokenPipeOnFirstUse();
  void runCli(process.argv.slice(2), load).then((code) => {
    process.exitCode = code;
  });
}
