/**
 * Where a differencing VHD's parent is: each parent locator holds a path in
 * a platform's own form — W2ru a relative Windows path and W2ku an absolute
 * one (UTF-16LE), MacX a file URL (UTF-8); "Mac " is an alias record, not a
 * path. These become names to try, relative to the child's folder as qemu
 * resolves backing files: the relative path first, then what the absolute
 * ones and the header's parent name end with.
 */
import { lastPathComponent } from "../vdisk/related.js";
import type { ParentLocator } from "./dynamic-header.js";

/** The locator's data as a path string, or undefined for a platform that holds no path. */
export function locatorPath(locator: ParentLocator, data: Buffer): string | undefined {
  switch (locator.platformCode) {
    case "W2ru":
    case "W2ku":
      return data.toString("utf16le").replace(/\0+$/, "");
    case "MacX":
      return fileUrlPath(data.toString("utf8").replace(/\0+$/, ""));
    default:
      return undefined;
  }
}

/** Names to try for the parent, best first, without repeats. */
export function parentCandidates(paths: Array<{ platformCode: string; path: string }>, parentName: string): string[] {
  const names: string[] = [];
  const add = (name: string | undefined) => {
    if (name && !names.includes(name)) names.push(name);
  };
  for (const { path } of paths.filter((p) => p.platformCode === "W2ru")) add(windowsRelative(path));
  for (const { path } of paths.filter((p) => p.platformCode === "MacX")) add(path);
  const absolute = [...paths.filter((p) => p.platformCode !== "W2ru").map((p) => p.path), parentName];
  for (const path of absolute) add(lastPathComponent(path));
  return names;
}

/** ".\\base.vhd" → "base.vhd", "..\\disks\\base.vhd" → "../disks/base.vhd". */
function windowsRelative(path: string): string {
  return path.replace(/\\/g, "/").replace(/^(\.\/)+/, "");
}

/** "file://localhost/Users/me/base.vhd" → "/Users/me/base.vhd"; anything else as it is. */
function fileUrlPath(text: string): string {
  const match = /^file:\/\/(?:localhost)?(\/.*)$/i.exec(text);
  if (!match) return text;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}
