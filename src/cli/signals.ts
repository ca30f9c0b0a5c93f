/**
 * Ctrl-C and SIGTERM stop a long job cleanly: the first one aborts the
 * signal the library watches (it stops at the next read boundary and saves
 * its state); a second one exits at once, for a read stuck on a dying drive.
 *
 * A read or open stuck in libuv's thread pool (a dying drive, a FIFO with no
 * writer) cannot be cancelled, and process.exit() waits for the pool's
 * threads: such a process never ends. So exiting at once means dying of the
 * signal itself, with its default action, as GNU dd does after its cleanup.
 */
export interface SignalWatch {
  readonly signal: AbortSignal;
  /** The first signal received, if any. */
  readonly received: NodeJS.Signals | undefined;
  dispose(): void;
  /**
   * After the job stopped on a signal (and reported it): exit 130 or 143,
   * or die of the signal when an I/O call the job gave up on is still
   * pending and would keep the process alive.
   */
  exitInterrupted(): void;
}

const EXIT_CODE: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** End the process by `sig`'s default action: it works whatever the thread pool is doing. */
function dieOf(sig: NodeJS.Signals): never {
  process.removeAllListeners(sig);
  process.kill(process.pid, sig);
  // Delivered before kill() returns; in case it is blocked, the plain way.
  process.exit(EXIT_CODE[sig] ?? 1);
}

/** Whether a file-system call is still running on the thread pool (libuv's request). */
function fsCallPending(): boolean {
  return process.getActiveResourcesInfo().some((r) => r.startsWith("FSReq"));
}

export function interruptOnSignals(signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"]): SignalWatch {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received) {
      process.stderr.write(`\nplatter: ${sig} again: exiting now, without saving\n`);
      dieOf(sig);
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
    exitInterrupted() {
      const sig = received ?? "SIGINT";
      process.exitCode = EXIT_CODE[sig] ?? 1;
      // Looked at on the next turn of the loop: a call that has just ended (the close the job
      // awaited) is still listed while its callback's promise continuations run.
      setImmediate(() => {
        if (fsCallPending()) dieOf(sig);
      });
    },
  };
}
