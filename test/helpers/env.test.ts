/** The CI rule of test/helpers/env.ts: off CI a missing tool skips its test; with CI=true it fails it. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { run } from "./run.js";

const ENV = fileURLToPath(new URL("./env.ts", import.meta.url));

/** needs(...requirements) evaluated in a fresh process (onCI is read at import) with CI set to `ci`. */
function needsWith(ci: string, ...requirements: string[]) {
  const script = `import(${JSON.stringify(ENV)}).then((m) => console.log(JSON.stringify(m.needs(...${JSON.stringify(requirements)}))))`;
  return run(process.execPath, ["--import", "tsx", "-e", script], { env: { CI: ci } });
}

test("off CI, a missing tool is a skip reason naming it; what is there is no reason at all", async () => {
  const missing = await needsWith("", "sh", "platter-no-such-tool");
  assert.equal(missing.code, 0, missing.stderr);
  assert.equal(JSON.parse(missing.stdout), "SKIPPED: platter-no-such-tool is missing");
  assert.equal(JSON.parse((await needsWith("false", "sh", "/")).stdout), false);
});

test("with CI=true, a missing tool or file fails instead of skipping, and says where to install it", async () => {
  const tool = await needsWith("true", "sh", "platter-no-such-tool");
  assert.notEqual(tool.code, 0);
  assert.match(tool.stderr, /CI=true but platter-no-such-tool is missing: add the Debian packages that provide it to test\/fixtures\/install-tools\.sh/);
  const file = await needsWith("true", "/nonexistent/isohdpfx.bin");
  assert.match(file.stderr, /CI=true but \/nonexistent\/isohdpfx\.bin is missing/);
  assert.equal(JSON.parse((await needsWith("true", "sh")).stdout), false);
});
