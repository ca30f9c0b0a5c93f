/**
 * Up to `width` jobs run at once (compressing chunks on every core), and
 * their results are handed to `consume` strictly in the order the jobs were
 * pushed (a compressed stream must be written in order). push() waits while
 * the window is full, so memory stays bounded by `width` results.
 */
export class OrderedWindow<T> {
  private readonly pending: Array<Promise<T>> = [];
  private consuming: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;

  constructor(
    readonly width: number,
    private readonly consume: (result: T) => Promise<void> | void,
  ) {
    if (!(width >= 1)) throw new RangeError(`OrderedWindow width must be at least 1, not ${width}`);
  }

  /** Start `job`; resolves once it has a place in the window. Rejects with the first failure of any job or consumer. */
  async push(job: () => Promise<T>): Promise<void> {
    while (this.pending.length >= this.width) await this.settleOldest();
    if (this.failure) throw this.failure.error;
    const run = job();
    run.catch(() => {}); // seen when its turn comes; not an unhandled rejection meanwhile
    this.pending.push(run);
  }

  /** Wait until every pushed job has been consumed; rethrow the first failure. */
  async drain(): Promise<void> {
    while (this.pending.length > 0) await this.settleOldest();
    await this.consuming;
    if (this.failure) throw this.failure.error;
  }

  private async settleOldest(): Promise<void> {
    const oldest = this.pending.shift() as Promise<T>;
    try {
      const result = await oldest;
      await this.consuming;
      if (this.failure) return;
      this.consuming = Promise.resolve(this.consume(result));
      await this.consuming;
    } catch (error) {
      this.failure ??= { error };
    }
  }
}
