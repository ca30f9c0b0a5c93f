/**
 * At most `width` jobs run at once; the others wait their turn in call
 * order. Unlike OrderedWindow, results go straight back to each caller.
 */
export class Limiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly width: number) {
    if (!(width >= 1)) throw new RangeError(`Limiter width must be at least 1, not ${width}`);
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.width) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the place passes straight to the next job
      else this.running--;
    }
  }
}
