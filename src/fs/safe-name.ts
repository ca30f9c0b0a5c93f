/**
 * Turn a name from an image into one that is safe to create inside an
 * extraction folder: never "", ".", "..", never a "/" or NUL inside, never
 * longer than NAME_MAX (255 bytes). Everything else is kept as is.
 */
export const NAME_MAX = 255;

export function safeName(name: string): string {
  let safe = name.replace(/[/\0]/g, "_");
  if (safe === "" || safe === "." || safe === "..") safe = `_${safe}`;
  if (Buffer.byteLength(safe) > NAME_MAX) safe = truncateName(safe, NAME_MAX);
  return safe;
}

/** Cut a name to `max` UTF-8 bytes, keeping a short extension and whole characters. */
export function truncateName(name: string, max: number): string {
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : "";
  const marker = "~";
  let base = name.slice(0, name.length - ext.length);
  const budget = max - Buffer.byteLength(ext) - marker.length;
  while (Buffer.byteLength(base) > budget) base = [...base].slice(0, -1).join("");
  return `${base}${marker}${ext}`;
}

/** "name~2.txt": a variant of `name` for a clash, still within NAME_MAX. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot) : "";
  const base = ext ? name.slice(0, dot) : name;
  const candidate = `${base}~${n}${ext}`;
  return Buffer.byteLength(candidate) <= NAME_MAX ? candidate : truncateName(candidate, NAME_MAX - 8) + `~${n}`;
}
