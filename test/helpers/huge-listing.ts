/**
 * Child process for the memory tests: ls or extract a folder of COUNT
 * entries that a FileSystem double makes on the fly (never held), and print
 * {"maxRss": bytes, ...} as the last line. Usage:
 *   node --import tsx test/helpers/huge-listing.ts ls|ls-l|ls-R-json|extract COUNT [DEST]
 */
import { Writable } from "node:stream";
import { printListing } from "../../src/cli/ls.js";
import { StdoutWriter } from "../../src/cli/output.js";
import { extractTree } from "../../src/fs/extract/index.js";
import { resolvePath } from "../../src/fs/path.js";
import type { FileType } from "../../src/fs/types.js";
import { FakeFs, type FakeSpec } from "./fake-fs.js";

const [mode, countArg, dest] = process.argv.slice(2);
const count = Number(countArg);

/** Names in descending order, so a sorted listing has to sort them; each one a new node. */
function* entries(type: FileType): Generator<[string, FakeSpec]> {
  const spec: FakeSpec = type === "file" ? { content: 1234 } : { type };
  for (let i = count - 1; i >= 0; i--) yield [`entry-${String(i).padStart(8, "0")}-a-name-of-some-length`, spec];
}

// Extracting a million files would take minutes of file creation: sockets walk the same path and are skipped.
const fs = new FakeFs({ children: [["big", { children: () => entries(mode === "extract" ? "socket" : "file") }]] });
const report: Record<string, number> = {};
if (mode === "extract") {
  let warnings = 0;
  const summary = await extractTree(fs, await resolvePath(fs, "/big"), dest, { onWarning: () => warnings++, onProgress: () => {} });
  Object.assign(report, { warnings, skipped: summary.skipped });
} else {
  // Output is thrown away, as fast as a stream can (with its backpressure, as stdout has).
  const out = new StdoutWriter(new Writable({ write: (_chunk, _encoding, done) => done() }));
  await printListing(fs, "/big", { long: mode === "ls-l", recursive: mode === "ls-R-json", json: mode === "ls-R-json" }, out);
}
process.stdout.write(`${JSON.stringify({ ...report, maxRss: process.resourceUsage().maxRSS * 1024 })}\n`);
