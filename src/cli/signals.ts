/**
 * Ctrl-C and SIGTERM stop a long job cleanly: the first one aborts the
 * signal the library watches (it stops at the next read boundary and saves
 * its state); a second one exits at once, for a read stuck on a dying drive.
 */
export interface SignalWatch {
  readonly signal: AbortSignal;
  /** The first signal received, if any. */
  readonly received: NodeJS.Signals | undefined;
  dispose(): void;
}

const EXIT_CODE: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export function interruptOnSignals(signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"]): SignalWatch {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received) {
      process.stderr.write(`\nplatter: ${sig} again: exiting now, without saving\n`);
      process.exit(EXIT_CODE[sig] ?? 1);
    }
    received = sig;
    process.stderr.write(`\nplatter: ${sig}: stopping after the current read (again to exit at once)\n`);
    controller.abort();
  };
  for (const s of signals) process.on(s, handler);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose() {
      for (const s of signals) process.off(s, handler);
    },
  };
}
