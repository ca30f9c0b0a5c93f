/** Run a system tool (losetup, mount, umount, modprobe) and get its output; a failure says what the tool said. */
import { execFile } from "node:child_process";
import { DeviceError, errnoCode } from "../errors.js";

export interface ToolResult {
  stdout: string;
  stderr: string;
}

export function runTool(tool: string, args: string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => {
      if (!err) {
        resolve({ stdout, stderr });
        return;
      }
      if (errnoCode(err) === "ENOENT") {
        reject(new DeviceError(`${tool} is not installed (it comes with util-linux)`, "ENOENT", { cause: err }));
        return;
      }
      const said = (stderr || stdout || err.message).trim().split("\n").pop() ?? "";
      reject(new DeviceError(`${tool} ${args.join(" ")} failed: ${said}`, undefined, { cause: err }));
    });
  });
}
