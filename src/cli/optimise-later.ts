/**
 * V8 optimises a function once it has run some 66 KB of bytecode. A command
 * that runs for a second or so runs thousands of small functions that many
 * times and then never again, and TurboFan optimising them cost more CPU than
 * running them: a quarter of a 3000-file `iso` build, and 0.2 s of the 0.94 s
 * CPU of turning a 1 GiB qcow2 into raw (per-cluster table walks), in perf;
 * extracting 3004 files from an ext4 image took 2.76 -> 2.18 s CPU with it.
 * Eight times the budget leaves optimising to the functions that run long
 * (a 100,000-file build takes as long as before).
 */
const OPTIMISE_AFTER_BYTECODE = 540_000;
/**
 * V8 versions known to have --interrupt-budget: an unknown flag would print
 * "Error: unrecognized flag" on stdout, where `iso -o -` writes the image.
 */
const INTERRUPT_BUDGET_V8 = /^1[1-3]\./;

/**
 * Raise V8's optimisation budget for the rest of this process. Called in a
 * command's action: after the bundle's code cache was accepted (V8 rejects a
 * cache made under other flags), and node:v8 (4-5 ms to load) is loaded only
 * by the commands that gain.
 */
export async function optimiseLater(): Promise<void> {
  if (!INTERRUPT_BUDGET_V8.test(process.versions.v8)) return;
  // The build's runs that write the code caches (launcher.ts) keep V8's flags as every start has them:
  // a cache written under this flag was rejected at each start (convert compiled its bundle afresh, 24 ms).
  if (process.env.PLATTER_WRITE_CODE_CACHE === "1") return;
  const { setFlagsFromString } = await import("node:v8");
  setFlagsFromString(`--interrupt-budget=${OPTIMISE_AFTER_BYTECODE}`);
}
