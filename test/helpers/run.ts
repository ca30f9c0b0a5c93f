import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The built CLI, exactly as `npx platter` runs it (npm test builds first). */
export const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface RunOptions {
  input?: Buffer | string;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

/** Run a command to completion, capturing output; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: options.timeoutMs ?? 120_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: stdoutBytes.toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        stdoutBytes,
      });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(options.input);
  });
}

export function platter(args: string[], options?: RunOptions): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], options);
}

/** Run a shell command line; throws with its stderr when it fails (for fixture setup). */
export async function sh(command: string, options?: RunOptions): Promise<string> {
  const r = await run("bash", ["-c", command], options);
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${command}\n${r.stderr}`);
  return r.stdout;
}

/**
 * Waits until `ready()` holds (checked every 25 ms) or `child` has exited,
 * and says whether it held: a test that interrupts a child waits for its
 * progress, never for a fixed time that a busy machine may not give it.
 */
export async function untilReady(child: ChildProcess, ready: () => boolean): Promise<boolean> {
  while (child.exitCode === null && child.signalCode === null) {
    if (ready()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return ready();
}
