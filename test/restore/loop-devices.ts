/** Loop devices and mounts a test file sets up, always undone when it ends (even when a test fails). */
import { after } from "node:test";
import { run, sh } from "../helpers/run.js";

const loops: string[] = [];
const undo: string[] = [];
after(async () => {
  for (const command of undo.reverse()) await run("sh", ["-c", command]);
  for (const l of loops.reverse()) await run("losetup", ["-d", l]);
});

export async function attach(file: string, ...flags: string[]): Promise<string> {
  const dev = (await sh(`losetup -f --show ${flags.join(" ")} ${file}`)).trim();
  loops.push(dev);
  return dev;
}

/** Run `command` now, and `undoCommand` when the file ends (umount, swapoff). */
export async function withUndo(command: string, undoCommand: string): Promise<void> {
  await sh(command);
  undo.push(undoCommand);
}

export async function sha256(path: string): Promise<string> {
  return (await sh(`sha256sum < ${path}`)).split(" ")[0];
}
