#!/usr/bin/env node
/**
 * The command line run from source (`tsx src/cli/main.ts`), each command
 * module imported when argv names it. The built `platter` is
 * dist/cli/main.js: launcher.ts with one bundle per command module.
 */
import { registrationsOf } from "./commands.js";
import { runMain } from "./run.js";

runMain(async (module) => registrationsOf(await import(`./${module}.js`)));
