import assert from "node:assert/strict";
import { test } from "node:test";
import { Command, Help } from "commander";
import { commands, registrationsOf } from "../../src/cli/commands.js";

test("each command's listing line is what its module declares (platter --help lists commands without loading them)", async () => {
  const help = new Help();
  for (const module of commands) {
    const program = new Command("platter");
    for (const register of registrationsOf(await import(`../../src/cli/${module.module}.js`))) register(program);
    const declared = program.commands.map((c) => [help.subcommandTerm(c), help.subcommandDescription(c)]);
    assert.deepEqual(declared.map(([term]) => term.split(" ")[0]), module.names);
    assert.deepEqual(module.listing, declared, `update the listing of ${module.names.join("/")} in src/cli/commands.ts`);
  }
});
