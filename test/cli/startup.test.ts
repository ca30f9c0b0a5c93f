import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { platter } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/disk.img", import.meta.url));
/** A command's own module: dist/cli/parts.js from tsc, dist/cli/chunks/parts-HASH.js from the bundle. */
const COMMAND_MODULE = /\/cli\/(chunks\/)?(capture|dd|parts|mount|ls|cat|extract|hash|iso|info|convert)(-[A-Z0-9]+)?\.js$/;
const NATIVE_OR_WASM = /\/node_modules\/(koffi|zstddec|xz-decompress|fuse-native)\//;

/**
 * Every file the CLI loads for `args`: ES modules through a loader hook,
 * CommonJS ones (native bindings come through createRequire) from the
 * require cache at exit.
 */
async function modulesLoaded(args: string[]): Promise<string[]> {
  const dir = tempDir();
  const log = join(dir, "loaded.txt");
  const hooks = join(dir, "hooks.mjs");
  const preload = join(dir, "preload.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(log)}, url + "\\n");
  return next(url, context);
}
`,
  );
  writeFileSync(
    preload,
    `import { register, createRequire } from "node:module";
import { appendFileSync } from "node:fs";
register(${JSON.stringify(pathToFileURL(hooks).href)});
const require = createRequire(import.meta.url);
process.on("exit", () => appendFileSync(${JSON.stringify(log)}, Object.keys(require.cache).join("\\n") + "\\n"));
`,
  );
  writeFileSync(log, "");
  const r = await platter(args, { env: { NODE_OPTIONS: `--import ${pathToFileURL(preload).href}` } });
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((f) => (f.startsWith("file:") ? fileURLToPath(f) : f));
}

test("platter --version and --help load no command's module", async () => {
  for (const args of [["--version"], ["--help"]]) {
    const loaded = await modulesLoaded(args);
    assert.ok(loaded.some((f) => f.endsWith("/cli/main.js")), `the recorder saw nothing: ${loaded.join(", ")}`);
    assert.deepEqual(
      loaded.filter((f) => COMMAND_MODULE.test(f)),
      [],
      `platter ${args.join(" ")}`,
    );
  }
});

test("platter parts loads its own module and no native or WebAssembly package", async () => {
  const loaded = await modulesLoaded(["parts", EXAMPLE]);
  assert.deepEqual(
    loaded.filter((f) => COMMAND_MODULE.test(f)).map((f) => /(capture|dd|parts|mount|ls|cat|extract|hash|iso|info|convert)/.exec(f)?.[1]),
    ["parts"],
  );
  assert.deepEqual(
    loaded.filter((f) => NATIVE_OR_WASM.test(f)),
    [],
  );
});
