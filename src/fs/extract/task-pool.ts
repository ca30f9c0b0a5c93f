/** Runs at most `limit` tasks at once; the first failure stops new tasks and is rethrown. */
export class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  /** Wait for a free slot; throws the first failure instead once there is one. */
  async ready(): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running);
    this.throwIfFailed();
  }

  /** Throw the first failure, if a task has failed: work that depends on the tasks stops early. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Start `task` (after ready(): the pool does not queue). */
  run(task: () => Promise<void>): void {
    const running: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(running));
    this.running.add(running);
  }

  /** Wait for every task; rethrow the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running);
    this.throwIfFailed();
  }
}
