/**
 * dist/cli/main.js, the `platter` bin. For a short command start-up is most
 * of the time a user waits, and most of start-up was Node resolving, reading
 * and compiling ES modules. So the built CLI is one CommonJS bundle per
 * command module (dist/cli/commands/NAME.js), and this launcher runs the one
 * argv names from V8's code cache (NAME.js.cache, written when the CLI is
 * built): no module resolution, no parsing. A cache that does not fit this
 * Node (another version, other V8 flags) is rejected by V8 and the bundle is
 * compiled from source, only slower.
 *
 * Built by scripts/bundle-cli.mjs, which fills in the two constants below.
 */
import { readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Script } from "node:vm";

/** Command name -> its module's bundle ("umount" -> "mount"); anything else is the listing bundle (--help, typos). */
declare const PLATTER_BUNDLES: Record<string, string>;
declare const PLATTER_VERSION: string;

/** The bundle for --help, `help`, no command and unknown commands: every command by its listing line. */
const LISTING_BUNDLE = "listing";
/** Set by the build: write the code cache of the bundle this run compiled. */
const WRITE_CACHE = "PLATTER_WRITE_CODE_CACHE";

function bundleFor(argv: readonly string[]): string {
  // The same rule as commands.ts namedModule: `platter help capture` is capture's.
  const name = argv[0] === "help" && argv.length > 1 ? argv[1] : argv[0];
  return name !== undefined && Object.hasOwn(PLATTER_BUNDLES, name) ? PLATTER_BUNDLES[name] : LISTING_BUNDLE;
}

function runBundle(name: string): void {
  const file = join(__dirname, "commands", `${name}.js`);
  // Latin-1: the bundle is ASCII (esbuild escapes the rest), and V8 takes Latin-1 bytes as they are, without checking UTF-8.
  const source = readFileSync(file, "latin1");
  const cacheFile = `${file}.cache`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // No cache (a build without one): compiled from source.
  }
  // The bundle is one function (its wrapper written by the build) of this module's require, through
  // which it reaches packages and node: modules, and ES-module packages through this module's import()
  // (util/import-package.ts).
  (globalThis as Record<symbol, unknown>)[Symbol.for("platter.importPackage")] = (specifier: string) => import(specifier);
  const script = new Script(source, { filename: file, cachedData });
  if (process.env[WRITE_CACHE] === "1") process.once("exit", () => writeFileSync(cacheFile, script.createCachedData()));
  (script.runInThisContext() as (r: NodeRequire, f: string, d: string) => void)(require, file, join(__dirname, "commands"));
}

const argv = process.argv.slice(2);
if (argv[0] === "-V" || argv[0] === "--version") {
  // Answered before any bundle (and without building process.stdout): as commander does, the version option first wins.
  writeSync(1, `${PLATTER_VERSION}\n`);
} else {
  runBundle(bundleFor(argv));
}
