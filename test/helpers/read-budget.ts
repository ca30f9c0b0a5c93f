/**
 * A read budget for hostile-input tests: a reader that loops on a damaged
 * image is caught after a bounded number of bytes, not after some seconds,
 * so the verdict does not depend on how busy the machine is.
 */
import assert from "node:assert/strict";
import { PlatterError } from "../../src/errors.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { CountingSource } from "../../src/io/counting-source.js";

/** Thrown by a ReadBudgetSource: not a PlatterError, so it fails the copy even if nothing else notices. */
class ReadBudgetExceeded extends Error {}

/**
 * Counts reads like CountingSource and refuses any past `limit` bytes. A
 * reader that catches the refusal and turns it into a PlatterError is still
 * caught: `exceeded` stays set.
 */
export class ReadBudgetSource extends CountingSource {
  exceeded = false;

  constructor(
    inner: BlockSource,
    readonly limit: number,
  ) {
    super(inner);
  }

  override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.bytesRead + length > this.limit) {
      this.exceeded = true;
      throw new ReadBudgetExceeded(`read more than ${this.limit} bytes (refused ${length} at ${offset})`);
    }
    return super.read(offset, length, into);
  }
}

/**
 * `run`'s result, or undefined when it ended in a PlatterError (a clean
 * refusal of a damaged input). Fails the test, naming `what`, on any other
 * exception, or when `run` read past `source`'s budget (even if the reader
 * turned the refusal into a PlatterError, or swallowed it).
 */
export async function endsCleanly<T>(what: string, source: ReadBudgetSource, run: () => Promise<T>): Promise<T | undefined> {
  let result: T | undefined;
  try {
    result = await run();
  } catch (err) {
    if (!(err instanceof PlatterError) || source.exceeded) {
      assert.fail(`${what}: ${source.exceeded ? "a reader loops: " : ""}${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  assert.ok(!source.exceeded, `${what}: read more than its budget of ${source.limit} bytes, and still ended cleanly`);
  return result;
}
