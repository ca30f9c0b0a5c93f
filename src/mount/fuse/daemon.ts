/**
 * Mount in the background, as guestmount and squashfuse do: the command
 * starts the server as a child in its own session (a Ctrl-C in the terminal
 * does not reach it), relays what the child prints on stderr until the
 * mount is live, then leaves it serving and exits. The child says "ready"
 * over an IPC channel; if it exits first, its error is already printed and
 * its exit code becomes the command's.
 */
import { spawn } from "node:child_process";

/** Set in the child's environment: report readiness to the parent instead of printing it. */
const CHILD_ENV = "PLATTER_FUSE_SERVER";

export type BackgroundResult = { ready: true; message: string } | { ready: false; exitCode: number };

export function isBackgroundServer(): boolean {
  return process.env[CHILD_ENV] === "1" && typeof process.send === "function";
}

/** In the background server: tell the waiting parent the mount is live, then stop talking to it. */
export function reportReady(message: string): void {
  // The parent closes its end of stderr once it has exited: later writes must not kill the server.
  process.stderr.on("error", () => undefined);
  process.send?.({ ready: true, message }, () => process.disconnect());
}

/**
 * The server's environment: this one, less NODE_EXTRA_CA_CERTS. Node reads
 * and parses that certificate bundle at every start (`node -e 0` takes
 * 0.10 s with it here, 0.06 s without), and a FUSE server makes no TLS
 * connection.
 */
function serverEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: "1" };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Run this CLI again with `args` (which include --foreground) as a detached server, and wait until it is ready or gone. */
export function startBackgroundServer(args: string[]): Promise<BackgroundResult> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe", "ipc"],
    env: serverEnvironment(),
  });
  child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("message", (message: { ready?: boolean; message?: string }) => {
      if (!message.ready) return;
      child.stderr?.destroy();
      if (child.connected) child.disconnect();
      child.unref();
      resolve({ ready: true, message: message.message ?? "" });
    });
    child.on("exit", (code) => resolve({ ready: false, exitCode: code !== null && code > 0 ? code : 1 }));
  });
}
