/**
 * Turn a name from an image into one that is safe to create inside an
 * extraction folder: never "", ".", "..", never a "/" or NUL inside, never
 * longer than NAME_MAX (255 bytes). Everything else is kept as is.
 *
 * Lengths are counted in the bytes the name is written with (nameBytes): a
 * byte that is not UTF-8 is one byte on disk, not the three of its escape.
 */
import { nameBytes } from "./names.js";

export const NAME_MAX = 255;

function byteLength(name: string): number {
  return nameBytes(name).length;
}

export function safeName(name: string): string {
  let safe = name.replace(/[/\0]/g, "_");
  if (safe === "" || safe === "." || safe === "..") safe = `_${safe}`;
  if (byteLength(safe) > NAME_MAX) safe = truncateName(safe, NAME_MAX);
  return safe;
}

/** Cut a name to `max` bytes, keeping a short extension and whole characters. */
export function truncateName(name: string, max: number): string {
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : "";
  const marker = "~";
  const budget = max - byteLength(ext) - marker.length;
  const kept: string[] = [];
  let used = 0;
  for (const ch of name.slice(0, name.length - ext.length)) {
    const size = byteLength(ch);
    if (used + size > budget) break;
    kept.push(ch);
    used += size;
  }
  return `${kept.join("")}${marker}${ext}`;
}

/** "name~2.txt": a variant of `name` for a clash, still within NAME_MAX. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot) : "";
  const base = ext ? name.slice(0, dot) : name;
  const candidate = `${base}~${n}${ext}`;
  return byteLength(candidate) <= NAME_MAX ? candidate : truncateName(candidate, NAME_MAX - 8) + `~${n}`;
}
