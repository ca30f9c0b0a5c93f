/**
 * GNU ddrescue's mapfile, as text: pure decode/encode, no I/O.
 *
 *   # comment lines ('#' at the start of a line or after whitespace)
 *   # current_pos  current_status  current_pass
 *   0x00120000     ?               1
 *   #      pos        size  status
 *   0x00000000  0x00117000  +
 *   0x00117000  0x00000200  -
 *
 * The first non-comment line is the status line (position being tried, the
 * phase as a character, and the pass number, which ddrescue < 1.21 omitted).
 * Every later line is a block: position, size, status. Blocks are contiguous.
 * Numbers use C integer syntax (decimal, 0x hex, leading-0 octal), as
 * ddrescue's sscanf("%lli") reads them; we write hex as ddrescue does, so
 * `ddrescuelog` reads ours and ours reads theirs.
 */
import { CorruptImageError } from "../errors.js";

/** Status of a block: what the rescue knows about those bytes. */
export type BlockStatus =
  | "?" // non-tried
  | "*" // failed in a large read, non-trimmed
  | "/" // trimmed, non-scraped
  | "-" // bad sector(s)
  | "+"; // finished (rescued)

/** The phase in the status line: a block status, or ddrescue's fill / generate modes. */
export type PhaseStatus = BlockStatus | "F" | "G";

export const BLOCK_STATUSES: readonly BlockStatus[] = ["?", "*", "/", "-", "+"];
const PHASE_STATUSES: readonly string[] = [...BLOCK_STATUSES, "F", "G"];

export interface MapBlock {
  pos: number;
  size: number;
  status: BlockStatus;
}

export interface Mapfile {
  /** Heading comment lines, without the leading "# ". */
  comments: string[];
  currentPos: number;
  currentStatus: PhaseStatus;
  currentPass: number;
  /** Contiguous blocks in order. Empty when the file had no status line (a fresh rescue). */
  blocks: MapBlock[];
}

/** Strip a comment: '#' at the start of the line or after whitespace starts one. */
function stripComment(line: string): string {
  for (let i = 0; i < line.length; i++) {
    if (line[i] === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** A C integer constant as sscanf("%lli") reads it; undefined if it is not one. */
export function parseCInteger(text: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const digits = m[2];
  let value: number;
  if (/^0[xX]/.test(digits)) value = Number.parseInt(digits.slice(2), 16);
  else if (digits.length > 1 && digits.startsWith("0")) value = Number.parseInt(digits.slice(1), 8);
  else value = Number(digits);
  if (m[1] === "-") value = -value;
  return Number.isSafeInteger(value) ? value : undefined;
}

function fail(lineNumber: number, message: string): never {
  throw new CorruptImageError(`mapfile line ${lineNumber}: ${message}`);
}

/** Parse mapfile text. Errors name the line and what is wrong in it. */
export function decodeMapfile(text: string): Mapfile {
  const map: Mapfile = { comments: [], currentPos: 0, currentStatus: "?", currentPass: 1, blocks: [] };
  let sawStatus = false;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNumber = i + 1;
    const raw = lines[i].replace(/\r$/, "");
    if (!sawStatus && /^\s*#/.test(raw)) {
      const comment = raw.replace(/^\s*#\s?/, "");
      if (!/^\s*(current_pos|pos)\s/.test(comment)) map.comments.push(comment);
      continue;
    }
    const fields = stripComment(raw).trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0) continue;
    if (!sawStatus) {
      sawStatus = true;
      if (fields.length < 2 || fields.length > 3) fail(lineNumber, "bad status line (expected: current_pos current_status [current_pass])");
      const pos = parseCInteger(fields[0]);
      if (pos === undefined || pos < 0) fail(lineNumber, `bad current_pos '${fields[0]}'`);
      if (fields[1].length !== 1 || !PHASE_STATUSES.includes(fields[1])) fail(lineNumber, `bad current_status '${fields[1]}'`);
      let pass = 1;
      if (fields.length === 3) {
        if (!/^\d+$/.test(fields[2]) || Number(fields[2]) < 1 || !Number.isSafeInteger(Number(fields[2]))) {
          fail(lineNumber, `bad current_pass '${fields[2]}' (a decimal number, at least 1)`);
        }
        pass = Number(fields[2]);
      }
      map.currentPos = pos;
      map.currentStatus = fields[1] as PhaseStatus;
      map.currentPass = pass;
      continue;
    }
    if (fields.length !== 3) fail(lineNumber, "bad block line (expected: pos size status)");
    const pos = parseCInteger(fields[0]);
    const size = parseCInteger(fields[1]);
    if (pos === undefined || pos < 0) fail(lineNumber, `bad block position '${fields[0]}'`);
    if (size === undefined || size < 0 || (size === 0 && pos !== 0)) fail(lineNumber, `bad block size '${fields[1]}'`);
    if (fields[2].length !== 1 || !(BLOCK_STATUSES as readonly string[]).includes(fields[2])) {
      fail(lineNumber, `bad block status '${fields[2]}' (one of ? * / - +)`);
    }
    if (!Number.isSafeInteger(pos + size)) fail(lineNumber, "block ends past 2^53 bytes");
    const previous = map.blocks.at(-1);
    if (previous && pos !== previous.pos + previous.size) {
      fail(lineNumber, `block at ${fields[0]} is not contiguous with the previous one (which ends at 0x${hex(previous.pos + previous.size)})`);
    }
    if (size > 0) map.blocks.push({ pos, size, status: fields[2] as BlockStatus });
  }
  return map;
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, "0");
}

/** Mapfile text in ddrescue's own layout (0x%08llX columns). */
export function encodeMapfile(map: Mapfile): string {
  const out: string[] = [];
  for (const c of map.comments) out.push(`# ${c}`.trimEnd());
  out.push("# current_pos  current_status  current_pass");
  out.push(`0x${hex(map.currentPos)}     ${map.currentStatus}               ${map.currentPass}`);
  out.push("#      pos        size  status");
  for (const b of map.blocks) out.push(`0x${hex(b.pos)}  0x${hex(b.size)}  ${b.status}`);
  return `${out.join("\n")}\n`;
}
