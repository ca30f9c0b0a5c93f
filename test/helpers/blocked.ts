/**
 * For tests that interrupt a command while it waits in the kernel (a FIFO's
 * open with no writer, a read of an empty pipe): spawn it, and tell when one
 * of its threads sleeps there (/proc/PID/task/TID/wchan).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { CLI } from "./run.js";

export interface Spawned {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the exit code, or 128 + the signal's number when a signal ended it (as a shell's $?). */
  exited: Promise<number>;
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function spawnPlatter(args: string[]): Spawned {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? 128 + (SIGNALS[signal as NodeJS.Signals] ?? 0)));
  });
  return { child, stderr: () => stderr, exited };
}

/** Kernel functions a thread sleeps in while it waits on a FIFO or pipe. */
export const WAITS_ON_PIPE = ["wait_for_partner", "pipe_read", "anon_pipe_read", "fifo_pipe_read", "pipe_wait", "pipe_wait_readable"];

/**
 * Polls until a thread of `pid` sleeps in one of `where`; false if none did
 * within `tries` polls (or the kernel hides wchan), so the caller goes on anyway.
 */
export async function blockedIn(pid: number, where: string[], tries = 600): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        if (where.includes(readFileSync(`/proc/${pid}/task/${tid}/wchan`, "utf8").trim())) return true;
      }
    } catch {
      return false; // gone, or no /proc
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
