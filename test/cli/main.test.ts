import assert from "node:assert/strict";
import { test } from "node:test";
import { VERSION } from "../../src/version.js";
import { platter } from "../helpers/run.js";

test("platter with no arguments is a usage error: the help on stderr, exit 2", async () => {
  const r = await platter([]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^Usage: platter \[options\] \[command\]\n/);
  assert.match(r.stderr, /\n {2}capture \[options\] <source> <dest>/);
});

test("platter --help and platter help: the same help on stdout, exit 0", async () => {
  const help = await platter(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: platter \[options\] \[command\]\n/);
  assert.equal(help.stderr, "");
  const viaCommand = await platter(["help"]);
  assert.equal(viaCommand.code, 0, viaCommand.stderr);
  assert.equal(viaCommand.stdout, help.stdout);
});

test("platter --version prints the version, exit 0; an unknown command is one line and exit 2", async () => {
  const version = await platter(["--version"]);
  assert.deepEqual([version.code, version.stdout], [0, `${VERSION}\n`]);
  const unknown = await platter(["bogus"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^platter: unknown command 'bogus'\n/);
});
