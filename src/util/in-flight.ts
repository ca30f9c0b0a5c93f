/**
 * Jobs that overlap, at most `width` at once, started in call order; unlike
 * Limiter, start() resolves as soon as its job has begun, so the caller can
 * go on to prepare the next. The first failure is kept: later start() and
 * drain() reject with it.
 */
export class InFlight {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(readonly width: number) {
    if (!(width >= 1)) throw new RangeError(`InFlight width must be at least 1, not ${width}`);
  }

  /** Begin `job` once fewer than `width` are running. */
  async start(job: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.width) await Promise.race(this.running);
    if (this.failure) throw this.failure.error;
    const run = (async () => {
      try {
        await job();
      } catch (error) {
        this.failure ??= { error };
      }
    })();
    this.running.add(run);
    void run.then(() => this.running.delete(run));
  }

  /** Resolves when every job has ended; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}
