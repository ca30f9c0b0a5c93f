/**
 * dd's command line: `if=… of=… bs=… count=… skip=… seek=… conv=… status=…
 * iflag=… oflag=…`, parsed with GNU dd's number syntax. Pure; no I/O.
 */
import { UsageError } from "../errors.js";

export interface DdOperands {
  input: string;
  /** undefined: standard output. */
  output?: string;
  /** Block size for input and output (bytes). */
  bs: number;
  /**
   * bs= was given. Without it GNU dd reads 512-byte input blocks and gathers
   * the output into full 512-byte blocks (its "two buffers"), so a pipe's
   * short reads do not make short output records.
   */
  bsGiven: boolean;
  /** Input blocks to copy; undefined: to the end. */
  count?: number;
  /** Input blocks to skip. */
  skip: number;
  /** Output blocks to skip. */
  seek: number;
  conv: { noerror: boolean; sync: boolean; sparse: boolean; notrunc: boolean; fsync: boolean; fdatasync: boolean };
  status: "default" | "progress" | "none" | "noxfer";
  iflag: { direct: boolean; fullblock: boolean };
  oflag: { direct: boolean };
}

const MULTIPLIERS: Record<string, number> = {
  "": 1,
  c: 1,
  w: 2,
  b: 512,
  kB: 1e3,
  K: 2 ** 10,
  k: 2 ** 10,
  KiB: 2 ** 10,
  MB: 1e6,
  M: 2 ** 20,
  MiB: 2 ** 20,
  GB: 1e9,
  G: 2 ** 30,
  GiB: 2 ** 30,
  TB: 1e12,
  T: 2 ** 40,
  TiB: 2 ** 40,
  PB: 1e15,
  P: 2 ** 50,
  PiB: 2 ** 50,
};

/** A dd number: `4096`, `64K`, `1M`, `1MB`, `2b` (512-byte blocks), `2x512` (products). */
export function parseDdNumber(text: string, operand: string): number {
  let value = 1;
  for (const factor of text.split("x")) {
    const m = /^(\d+)([A-Za-z]*)$/.exec(factor);
    const unit = m ? MULTIPLIERS[m[2]] : undefined;
    if (!m || unit === undefined) {
      throw new UsageError(`dd: invalid number '${text}' for ${operand} (examples: 512, 64K, 1M, 1MB, 4b)`);
    }
    value *= Number(m[1]) * unit;
  }
  if (!Number.isSafeInteger(value)) throw new UsageError(`dd: ${operand}=${text} is too large`);
  return value;
}

/** Every flag platter dd accepts, and nothing it would ignore: its --help lists these. */
export const CONV_FLAGS = ["noerror", "sync", "sparse", "notrunc", "fsync", "fdatasync"] as const;
export const IFLAG_FLAGS = ["direct", "fullblock"] as const;
export const OFLAG_FLAGS = ["direct"] as const;

function parseFlags<T extends string>(text: string, operand: string, known: readonly T[]): Set<T> {
  const out = new Set<T>();
  for (const f of text.split(",").filter(Boolean)) {
    if (!(known as readonly string[]).includes(f)) throw new UsageError(`dd: invalid ${operand} '${f}' (platter dd knows ${known.join(", ")})`);
    out.add(f as T);
  }
  return out;
}

/** Parse `key=value` operands as GNU dd does; anything else is a usage error. */
export function parseDdOperands(args: string[]): DdOperands {
  const ops: DdOperands = {
    input: "",
    bs: 512,
    bsGiven: false,
    skip: 0,
    seek: 0,
    conv: { noerror: false, sync: false, sparse: false, notrunc: false, fsync: false, fdatasync: false },
    status: "default",
    iflag: { direct: false, fullblock: false },
    oflag: { direct: false },
  };
  let sawInput = false;
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new UsageError(`dd: unrecognized operand '${arg}' (operands look like if=FILE, bs=64K)`);
    const key = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    switch (key) {
      case "if":
        if (!value) throw new UsageError("dd: if= needs a file or device");
        ops.input = value;
        sawInput = true;
        break;
      case "of":
        if (!value) throw new UsageError("dd: of= needs a file or device");
        ops.output = value === "-" ? undefined : value;
        break;
      case "bs":
        ops.bs = parseDdNumber(value, key);
        ops.bsGiven = true;
        if (ops.bs < 1) throw new UsageError("dd: bs must be at least 1");
        if (ops.bs > 1 << 30) throw new UsageError(`dd: bs=${value} is too large (at most 1G)`);
        break;
      case "count":
        ops.count = parseDdNumber(value, key);
        break;
      case "skip":
      case "iseek":
        ops.skip = parseDdNumber(value, key);
        break;
      case "seek":
      case "oseek":
        ops.seek = parseDdNumber(value, key);
        break;
      case "conv": {
        const f = parseFlags(value, key, CONV_FLAGS);
        ops.conv = {
          noerror: f.has("noerror"),
          sync: f.has("sync"),
          sparse: f.has("sparse"),
          notrunc: f.has("notrunc"),
          fsync: f.has("fsync"),
          fdatasync: f.has("fdatasync"),
        };
        break;
      }
      case "status":
        if (!["progress", "none", "noxfer"].includes(value)) {
          throw new UsageError(`dd: invalid status '${value}' (progress, none or noxfer)`);
        }
        ops.status = value as DdOperands["status"];
        break;
      case "iflag": {
        const f = parseFlags(value, key, IFLAG_FLAGS);
        ops.iflag = { direct: f.has("direct"), fullblock: f.has("fullblock") };
        break;
      }
      case "oflag": {
        const f = parseFlags(value, key, OFLAG_FLAGS);
        ops.oflag = { direct: f.has("direct") };
        break;
      }
      default:
        throw new UsageError(`dd: unrecognized operand '${arg}' (platter dd knows if of bs count skip seek conv status iflag oflag)`);
    }
  }
  if (!sawInput) throw new UsageError("dd: if= is required (if=- reads standard input)");
  return ops;
}
