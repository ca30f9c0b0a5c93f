/**
 * Runs async jobs one after another, in the order they were handed in,
 * whether or not the caller waits for each. For a consumer that must see
 * its input in call order (a stream, a hash) fed by producers that overlap.
 */
export class InTurn {
  /** Settles when the last job handed in has finished, failed or not. */
  private last: Promise<void> = Promise.resolve();

  /** Starts `job` once every earlier job has finished; resolves or rejects as `job` does. */
  run(job: () => void | Promise<void>): Promise<void> {
    const run = this.last.then(job);
    this.last = run.catch(() => {});
    return run;
  }

  /** Resolves when every job handed in so far has finished. */
  idle(): Promise<void> {
    return this.last;
  }
}
