import { UsageError } from "../errors.js";

const BINARY: Record<string, number> = { "": 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50, E: 2 ** 60 };
const DECIMAL: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/**
 * Parse a byte count as people type it: `4096`, `64K`, `1M`, `1MiB`, `2G`,
 * `1GB` (dd's convention: a bare letter or xiB is binary, xB is decimal),
 * `0x1000`, and `s` for 512-byte sectors.
 */
export function parseSize(text: string, what = "size"): number {
  const m = /^\s*(0x[0-9a-fA-F]+|\d+)\s*([kKmMgGtTpPeE]?)(i?[bB])?\s*$/.exec(text);
  const sectors = /^\s*(\d+)\s*s\s*$/.exec(text);
  let value: number;
  if (sectors) {
    value = Number(sectors[1]) * 512;
  } else if (m) {
    const n = m[1].startsWith("0x") ? Number.parseInt(m[1], 16) : Number(m[1]);
    const letter = m[2].toUpperCase();
    const suffix = m[3];
    const decimal = suffix !== undefined && !suffix.toLowerCase().startsWith("i") && letter !== "";
    const unit = decimal ? DECIMAL[letter] : BINARY[letter];
    value = n * unit;
  } else {
    throw new UsageError(`invalid ${what} '${text}' (examples: 4096, 64K, 1MiB, 2G)`);
  }
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what} '${text}' is too large`);
  return value;
}

/** 1536 -> "1.5 KiB"; exact bytes below 1 KiB. */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  if (i === 0) return `${bytes} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  const text = value.toFixed(digits);
  // Trim "1.50" to "1.5" and "2.00" to "2", but never the zeros of "200".
  return `${digits > 0 ? text.replace(/\.?0+$/, "") : text} ${units[i]}`;
}

/** A positive whole number from the command line. */
export function parseCount(text: string, what: string, min = 0): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`invalid ${what} '${text}': expected a whole number`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`invalid ${what} '${text}': must be at least ${min}`);
  return n;
}

/** "12 s", "3 min 4 s", "2 h 05 min" */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}
