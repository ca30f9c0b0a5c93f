/**
 * `blkid -p -o export` as an object: the reference every probe test compares
 * with. Values come back unescaped (blkid writes "a\ b" for "a b").
 */
import { run } from "./run.js";

export type BlkidValues = Record<string, string>;

export async function blkid(path: string, range?: { offset: number; length: number }): Promise<BlkidValues> {
  const args = ["-p", "-o", "export"];
  if (range) args.push("-O", String(range.offset), "-S", String(range.length));
  const r = await run("blkid", [...args, path]);
  // Exit 2: nothing found. Anything else non-zero is a real failure.
  if (r.code !== 0 && r.code !== 2) throw new Error(`blkid ${args.join(" ")} ${path} failed (${r.code}): ${r.stderr}`);
  const values: BlkidValues = {};
  for (const line of r.stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) values[line.slice(0, eq)] = unescape(line.slice(eq + 1));
  }
  return values;
}

/**
 * Undo blkid's safe printing: a backslash before shell metacharacters, and
 * `cat -v` notation for bytes outside printable ASCII (M-x sets the high bit,
 * ^X is a control character), then read the bytes as UTF-8.
 */
function unescape(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; ) {
    let high = 0;
    if (text.startsWith("M-", i)) {
      high = 0x80;
      i += 2;
    }
    if (text[i] === "^" && i + 1 < text.length) {
      const c = text.charCodeAt(i + 1);
      bytes.push(high | (c === 0x3f ? 0x7f : c & 0x1f));
      i += 2;
    } else if (text[i] === "\\" && !high && i + 1 < text.length) {
      bytes.push(text.charCodeAt(i + 1));
      i += 2;
    } else {
      bytes.push(high | text.charCodeAt(i));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** What platter's probe should say, from blkid's values. */
export function expectedProbe(v: BlkidValues): { filesystem: string; label: string | null; uuid: string | null; version?: string } | null {
  if (!v.TYPE) return null;
  const out: { filesystem: string; label: string | null; uuid: string | null; version?: string } = {
    filesystem: v.TYPE,
    label: v.LABEL ?? null,
    uuid: v.UUID ?? null,
  };
  if (v.VERSION !== undefined) out.version = v.VERSION;
  return out;
}
