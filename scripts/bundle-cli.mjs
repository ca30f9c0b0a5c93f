/**
 * Builds the command line into dist/cli/ (after tsc has built the library):
 *   main.js             the launcher (src/cli/launcher.ts), the package's bin
 *   commands/NAME.js    one CommonJS bundle per command module in
 *                       src/cli/commands.ts, plus listing.js for --help, as
 *                       one function of (require, __filename, __dirname)
 *   commands/NAME.js.cache  V8's code cache of each bundle
 * Why: start-up. As ES modules split into shared chunks, `platter parts`
 * resolved, read and compiled some 40 files before doing any work; a bundle
 * run from its code cache is one read and no parsing (launcher.ts).
 * Packages with native or WebAssembly parts stay outside the bundles: they
 * are loaded from node_modules, and only by the code that needs them.
 */
import { build, transform } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}dist/cli`;
const { version } = JSON.parse(readFileSync(`${root}package.json`, "utf8"));

/** The command table, read from its source (it is plain data and imports only types). */
async function commandModules() {
  const { code } = await transform(readFileSync(`${root}src/cli/commands.ts`, "utf8"), { loader: "ts", format: "esm" });
  const temp = `${out}/.commands.mjs`;
  writeFileSync(temp, code);
  try {
    return (await import(pathToFileURL(temp).href)).commands;
  } finally {
    rmSync(temp);
  }
}

/** src/version.ts reads ../package.json next to itself: from a bundle that path is wrong, so the bundle gets the value. */
const inlineVersion = {
  name: "inline-version",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(version)};\n`, loader: "ts" }));
  },
};

/**
 * commander requires node:child_process at load, for executable subcommands
 * platter has none of: 5 ms of every start-up. It gets the module on first use.
 */
const lazyChildProcess = {
  name: "lazy-child-process",
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: "lazy-child-process", namespace: "platter" } : undefined,
    );
    b.onLoad({ filter: /^lazy-child-process$/, namespace: "platter" }, () => ({
      contents: 'module.exports = new Proxy({}, { get: (_, key) => require("node:child_process")[key] });',
      loader: "js",
    }));
  },
};

/**
 * createRequire(import.meta.url) (how the library's ES modules load koffi) needs node:module, 2 ms
 * to load; in a bundle the require the launcher passes in resolves the same packages.
 */
const bundleRequire = {
  name: "bundle-require",
  setup(b) {
    b.onResolve({ filter: /^(node:)?module$/ }, () => ({ path: "bundle-require", namespace: "platter" }));
    b.onLoad({ filter: /^bundle-require$/, namespace: "platter" }, () => ({
      contents: "exports.createRequire = () => require;",
      loader: "js",
    }));
  },
};

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  logLevel: "warning",
  // Start-up reads and hashes the whole bundle: a third less of it is a few ms of every command.
  minifyWhitespace: true,
  minifySyntax: true,
  // Names too (a bundle is not read by people; errors carry their messages, and nothing prints a class name).
  minifyIdentifiers: true,
};

rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/commands`, { recursive: true });
// dist/ is ES modules (package.json "type"); the CLI's files are CommonJS.
writeFileSync(`${out}/package.json`, `${JSON.stringify({ type: "commonjs" })}\n`);

const modules = await commandModules();
const bundles = Object.fromEntries(modules.flatMap((m) => m.names.map((name) => [name, m.module])));

const entries = [
  ...modules.map((m) => ({
    name: m.module,
    source: `import * as commandModule from "./${m.module}.js";\nimport { registrationsOf } from "./commands.js";\nimport { runMain } from "./run.js";\nrunMain(async () => registrationsOf(commandModule));\n`,
  })),
  {
    name: "listing",
    source: `import { runMain } from "./run.js";\nrunMain(async (module) => { throw new Error(\`\${module} is not in the listing bundle\`); });\n`,
  },
];

await Promise.all(
  entries.map(({ name, source }) =>
    build({
      ...common,
      stdin: { contents: source, resolveDir: `${root}src/cli`, sourcefile: `${name}-entry.ts`, loader: "ts" },
      outfile: `${out}/commands/${name}.js`,
      // Packages with native or WebAssembly parts stay in node_modules. A vm script's import() loses
      // its loader when V8 runs it from the code cache, so bundles make none: every import() becomes
      // require(), lazily, and ES-module packages (zstddec) come through the launcher's (util/import-package.ts).
      external: ["koffi", "zstddec", "xz-decompress", "fuse-native"],
      supported: { "dynamic-import": false },
      // The launcher passes require and __filename; ES module code asks for import.meta.url.
      define: { "import.meta.url": "__platterModuleUrl" },
      // The launcher runs a bundle as one function of its CommonJS arguments, written here rather than
      // wrapped around the source at start-up: a second copy of 400 KB of text filled V8's young
      // generation enough to cost a scavenge (2 ms) in every command.
      banner: { js: '(function (require, __filename, __dirname) {const __platterModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
      footer: { js: "\n})" },
      // ASCII (esbuild's default, stated): the launcher reads the bundle as Latin-1, which V8 takes without decoding.
      charset: "ascii",
      plugins: [inlineVersion, lazyChildProcess, bundleRequire],
    }),
  ),
);

await build({
  ...common,
  entryPoints: [`${root}src/cli/launcher.ts`],
  outfile: `${out}/main.js`,
  banner: { js: "#!/usr/bin/env node" },
  define: { PLATTER_BUNDLES: JSON.stringify(bundles), PLATTER_VERSION: JSON.stringify(version) },
});

// Each bundle's code cache, from a run that builds its part of the program (--help compiles commander and the command's options).
const cacheRun = (args, cwd) =>
  execFileSync(process.execPath, [`${out}/main.js`, ...args], { cwd, env: { ...process.env, PLATTER_WRITE_CODE_CACHE: "1" }, stdio: "ignore" });
for (const { name } of entries) {
  const command = modules.find((m) => m.module === name)?.names[0];
  cacheRun([...(command ? [command] : []), "--help"]);
}

/**
 * Then the commands of examples/tour.sh on the bundled example disk, each run
 * starting from the cache the last one of its bundle wrote: a cache from
 * --help alone left every reader to be compiled on first use (`ls` of a small
 * ISO 8-14 ms slower). A run that fails here (a system library missing) only
 * leaves its bundle's cache as it was.
 */
const example = `${root}examples/disk.img`;
const warmUps = [
  ["capture", example, "disk.img", "--hash", "sha256", "--map", "disk.map", "--quiet"],
  ["parts", "disk.img"],
  ["ls", "disk.img", "--part", "2", "-l", "-R"],
  ["cat", "disk.img", "--part", "2", "/home/alice/hostname-link"],
  ["ls", "disk.img", "--part", "1", "-l"],
  ["extract", "disk.img", "--part", "1", "-o", "fat-files"],
  ["iso", "fat-files", "-o", "files.iso", "-V", "EXAMPLE"],
  ["info", "files.iso"],
  ["ls", "files.iso", "-l", "-R"],
  ["hash", "files.iso"],
  ["hash", "files.iso", "--hash", "sha256,md5"],
  ["convert", "disk.img", "disk.img.zst", "--quiet"],
  ["ls", "disk.img.zst", "--part", "2", "/home"],
  ["convert", "disk.img.zst", "disk.qcow2", "--quiet"],
  ["info", "disk.qcow2"],
  ["hash", "disk.qcow2"],
];
const scratch = mkdtempSync(join(tmpdir(), "platter-build-"));
try {
  for (const args of warmUps) {
    try {
      cacheRun(args, scratch);
    } catch {
      // this bundle keeps the cache it had
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
