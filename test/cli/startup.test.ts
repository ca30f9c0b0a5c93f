import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { platter } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/disk.img", import.meta.url));
/** A command module's bundle, which the launcher (dist/cli/main.js) reads and runs: dist/cli/commands/NAME.js. */
const COMMAND_BUNDLE = /\/cli\/commands\/(\w+)\.js$/;
const NATIVE_OR_WASM = /\/node_modules\/(koffi|zstddec|xz-decompress|fuse-native)\//;

/**
 * Every file the CLI loads for `args`: ES modules through a loader hook,
 * CommonJS ones (native bindings come through createRequire) from the
 * require cache at exit, and the bundles the launcher reads with readFileSync.
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
const fs = require("node:fs");
const readFileSync = fs.readFileSync;
fs.readFileSync = (path, ...rest) => {
  if (typeof path === "string" && path.endsWith(".js")) appendFileSync(${JSON.stringify(log)}, path + "\\n");
  return readFileSync(path, ...rest);
};
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

test("platter --version reads no bundle, --help only the listing's", async () => {
  for (const [args, bundles] of [
    [["--version"], []],
    [["--help"], ["listing"]],
  ] as const) {
    const loaded = await modulesLoaded([...args]);
    assert.ok(loaded.some((f) => f.endsWith("/cli/main.js")), `the recorder saw nothing: ${loaded.join(", ")}`);
    assert.deepEqual(
      loaded.map((f) => COMMAND_BUNDLE.exec(f)?.[1]).filter(Boolean),
      bundles,
      `platter ${args.join(" ")}`,
    );
  }
});

test("platter parts runs its own bundle and loads no native or WebAssembly package", async () => {
  const loaded = await modulesLoaded(["parts", EXAMPLE]);
  assert.deepEqual(
    loaded.map((f) => COMMAND_BUNDLE.exec(f)?.[1]).filter(Boolean),
    ["parts"],
  );
  assert.deepEqual(
    loaded.filter((f) => NATIVE_OR_WASM.test(f)),
    [],
  );
});

test("every bundle's code cache is one V8 accepts at start-up (a cache written under other V8 flags is rejected, and the bundle compiled afresh)", () => {
  const commands = fileURLToPath(new URL("../../dist/cli/commands/", import.meta.url));
  const bundles = readdirSync(commands).filter((f) => f.endsWith(".js"));
  assert.ok(bundles.length > 5, `bundles in ${commands}: ${bundles.join(", ")}`);
  // A fresh node, as the launcher runs: the test runner's own flags must not decide.
  const probe = `const { readFileSync } = require("node:fs"); const { Script } = require("node:vm");
const rejected = ${JSON.stringify(bundles)}.filter((name) => {
  const file = ${JSON.stringify(commands)} + name;
  return new Script(readFileSync(file, "latin1"), { filename: file, cachedData: readFileSync(file + ".cache") }).cachedDataRejected;
});
process.stdout.write(JSON.stringify(rejected));`;
  const rejected = JSON.parse(execFileSync(process.execPath, ["-e", probe], { encoding: "utf8" })) as string[];
  assert.deepEqual(rejected, []);
});
