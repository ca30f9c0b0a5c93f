/** What is mounted where, from /proc/self/mountinfo. */
import { readFileSync } from "node:fs";

export interface MountEntry {
  mountPoint: string;
  source: string;
  fstype: string;
}

/** mountinfo escapes space, tab, newline and backslash as \\ooo. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

export function listMounts(): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 0 || fields.length < dash + 3) continue;
    entries.push({ mountPoint: unescapeOctal(fields[4]), fstype: fields[dash + 1], source: unescapeOctal(fields[dash + 2]) });
  }
  return entries;
}

/** The kernel's filesystem drivers (/proc/filesystems). */
export function kernelFilesystems(): Set<string> {
  const names = new Set<string>();
  for (const line of readFileSync("/proc/filesystems", "utf8").split("\n")) {
    const name = line.split("\t").pop()?.trim();
    if (name) names.add(name);
  }
  return names;
}
