/**
 * Runs a capture from a file seen through a FaultySource, in a process of
 * its own, so a test can kill it with SIGKILL mid-copy and resume it:
 *   node --import tsx test/helpers/faulty-capture.ts SOURCE DEST MAP FAULTS_JSON [DELAY_MS]
 * FAULTS_JSON is a FaultRange[]; DELAY_MS slows every read. Prints the
 * CaptureResult as JSON.
 */
import { capture } from "../../src/capture/capture.js";
import { FaultySource, type FaultRange } from "./faulty-source.js";
import { openSource } from "../../src/io/file-source.js";

const [sourcePath, dest, mapPath, faultsJson, delay] = process.argv.slice(2);
const inner = await openSource(sourcePath);
const faults = JSON.parse(faultsJson) as FaultRange[];
if (delay) faults.push({ first: 0, last: inner.size / inner.sectorSize, delayMs: Number(delay) });
const source = new FaultySource(inner, faults);
const result = await capture({
  source,
  dest,
  mapPath,
  hashes: ["sha256"],
  blockSize: 64 << 10,
  mapIntervalMs: 50,
});
await source.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
