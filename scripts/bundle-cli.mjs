/**
 * Bundles the command line into dist/cli/main.js (the package's bin) plus one
 * chunk per command in dist/cli/chunks/, after tsc has built the library.
 * Why: start-up. Node resolves, reads and links each ES module on its own;
 * `platter parts` used to open some 150 files before doing any work. One file
 * per command (shared code in shared chunks) is what a short command pays.
 * Packages with native or WebAssembly parts stay outside the bundle: they
 * are loaded from node_modules, and only by the code that needs them.
 */
import { build } from "esbuild";
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const { version } = JSON.parse(readFileSync(`${root}package.json`, "utf8"));

/** src/version.ts reads ../package.json next to itself: from a chunk that path is wrong, so the bundle gets the value. */
const inlineVersion = {
  name: "inline-version",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({
      contents: `export const VERSION = ${JSON.stringify(version)};\n`,
      loader: "ts",
    }));
  },
};

rmSync(`${root}dist/cli/chunks`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: "src/cli/main.ts" },
  outdir: "dist/cli",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  external: ["koffi", "zstddec", "xz-decompress", "fuse-native"],
  // Bundled CommonJS (commander) calls require() for node: modules; ES modules have none of their own.
  banner: { js: 'import { createRequire as __platterRequire } from "node:module"; const require = __platterRequire(import.meta.url);' },
  plugins: [inlineVersion],
  logLevel: "warning",
});
