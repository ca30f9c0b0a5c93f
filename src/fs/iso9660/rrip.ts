/**
 * Rock Ridge (RRIP 1.12) entries carried in SUSP areas: the POSIX side of a
 * file that plain ISO 9660 cannot hold.
 *
 *   PX mode, links, uid, gid, serial number   PN device number
 *   SL symlink target as path components      NM the real name
 *   TF timestamps                             CL/PL/RE relocated directories
 *   ZF (Z2) zisofs compression (see zisofs.ts)
 *
 * Encoders return whole entries (NM and SL may need several); the decoder
 * folds entries, in order, into one RockRidgeInfo.
 */
import { readBoth32, writeBoth32 } from "./both-endian.js";
import { decodeRecordDate, decodeVolumeDate, encodeRecordDate, encodeVolumeDate, fitsRecordDate, RECORD_DATE_SIZE, VOLUME_DATE_SIZE } from "./dates.js";
import { encodeSuspEntry, MAX_SUSP_ENTRY, newSuspEntry, SUSP_HEADER_SIZE, type ExtensionReference, type SuspEntry } from "./susp.js";
import { decodeZf, type ZisofsParams } from "./zisofs.js";

/** The ER entry of RRIP 1.12 (IEEE P1282), what platter writes. */
export const RRIP_1_12: ExtensionReference = {
  id: "IEEE_1282",
  descriptor: "THE IEEE 1282 PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS.",
  source: "PLEASE CONTACT THE IEEE STANDARDS DEPARTMENT, PISCATAWAY, NJ, USA FOR THE 1282 SPECIFICATION.",
  version: 1,
};

/** Identifiers of the Rock Ridge versions readers meet (1.09/1.10, 1.12 draft, 1.12). */
export const ROCK_RIDGE_IDS = ["RRIP_1991A", "IEEE_P1282", "IEEE_1282"];

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export interface PosixAttributes {
  /** Full st_mode: file type and permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** RRIP 1.12 file serial number (inode number); hard links share it. */
  serial: number;
}

/** PX with the RRIP 1.12 serial number: 4 + 5 both-endian numbers. */
export const PX_ENTRY_SIZE = SUSP_HEADER_SIZE + 40;

export function encodePx(px: PosixAttributes): Buffer {
  const buf = newSuspEntry("PX", PX_ENTRY_SIZE - SUSP_HEADER_SIZE);
  const o = SUSP_HEADER_SIZE;
  writeBoth32(buf, o, px.mode >>> 0);
  writeBoth32(buf, o + 8, px.nlink >>> 0);
  writeBoth32(buf, o + 16, px.uid >>> 0);
  writeBoth32(buf, o + 24, px.gid >>> 0);
  writeBoth32(buf, o + 32, px.serial >>> 0);
  return buf;
}

export const PN_ENTRY_SIZE = SUSP_HEADER_SIZE + 16;

/**
 * PN: the device number split into two 32-bit halves of the 64-bit dev_t (as
 * libisofs does: Linux reads small numbers from the low half, libarchive
 * joins both halves).
 */
export function encodePn(rdev: number): Buffer {
  const buf = newSuspEntry("PN", PN_ENTRY_SIZE - SUSP_HEADER_SIZE);
  writeBoth32(buf, SUSP_HEADER_SIZE, Math.floor(rdev / 2 ** 32) >>> 0);
  writeBoth32(buf, SUSP_HEADER_SIZE + 8, rdev % 2 ** 32 >>> 0);
  return buf;
}

/**
 * [major, minor] from PN's two halves. The writers disagree: genisoimage
 * puts the major in the high half and the minor in the low one (and Linux
 * reads PN so); libisofs (xorriso) and platter put the two halves of the
 * dev_t stat() gave, whose high half is 0 for every Linux device number, so
 * the low half is split as glibc's major()/minor() split it (right where
 * Linux's 8-bit split is not: minors from 256 on). libarchive joins the
 * halves into one dev_t, which reads genisoimage's devices wrong.
 */
export function deviceNumbers(high: number, low: number): [number, number] {
  if (high !== 0) return [high, low];
  return [(low >>> 8) & 0xfff, ((low & 0xff) | ((low >>> 12) & 0xfff00)) >>> 0];
}

const NM_CONTINUE = 0x01;
const NM_CURRENT = 0x02;
const NM_PARENT = 0x04;
/** Bytes of name one NM entry holds: 255 - 4 header - 1 flags. */
const NM_CHUNK = MAX_SUSP_ENTRY - SUSP_HEADER_SIZE - 1;

/** The lengths of the NM entries for a name of `nameLength` bytes, as encodeNm makes them. */
export function nmEntrySizes(nameLength: number): number[] {
  const sizes: number[] = [];
  for (let o = 0; o < nameLength || sizes.length === 0; o += NM_CHUNK) sizes.push(SUSP_HEADER_SIZE + 1 + Math.min(NM_CHUNK, nameLength - o));
  return sizes;
}

/** NM entries for a name (several, flagged CONTINUE, when it is longer than 250 bytes). */
export function encodeNm(name: Buffer): Buffer[] {
  let o = 0;
  return nmEntrySizes(name.length).map((size) => {
    const chunk = size - SUSP_HEADER_SIZE - 1;
    const entry = newSuspEntry("NM", 1 + chunk);
    entry[SUSP_HEADER_SIZE] = o + chunk < name.length ? NM_CONTINUE : 0;
    name.copy(entry, SUSP_HEADER_SIZE + 1, o, o + chunk);
    o += chunk;
    return entry;
  });
}

const SL_CONTINUE = 0x01;
const SL_CURRENT = 0x02;
const SL_PARENT = 0x04;
const SL_ROOT = 0x08;
/** Bytes of components one SL entry holds: 255 - 4 header - 1 flags. */
const SL_CAPACITY = MAX_SUSP_ENTRY - SUSP_HEADER_SIZE - 1;

interface SlComponent {
  flags: number;
  text: Buffer;
}

function slComponents(target: Buffer): SlComponent[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= target.length; i++) {
    if (i === target.length || target[i] === 0x2f) {
      parts.push(target.subarray(start, i));
      start = i + 1;
    }
  }
  const components: SlComponent[] = [];
  parts.forEach((p, i) => {
    if (i === 0 && p.length === 0 && target.length > 0) components.push({ flags: SL_ROOT, text: Buffer.alloc(0) });
    else if (p.length === 1 && p[0] === 0x2e) components.push({ flags: SL_CURRENT, text: Buffer.alloc(0) });
    else if (p.length === 2 && p[0] === 0x2e && p[1] === 0x2e) components.push({ flags: SL_PARENT, text: Buffer.alloc(0) });
    else components.push({ flags: 0, text: p });
  });
  // "/" alone is the root component and nothing after it.
  if (components.length === 2 && components[0].flags === SL_ROOT && components[1].text.length === 0 && components[1].flags === 0) {
    components.pop();
  }
  return components;
}

/**
 * SL entries for a symlink target. When the target needs several entries,
 * each entry ends inside a component flagged CONTINUE (an empty one if need
 * be): Linux and libarchive then agree on where the slashes go, which they do
 * not when an entry ends between two components.
 */
export function encodeSl(target: Buffer): Buffer[] {
  const queue = slComponents(target);
  const entries: SlComponent[][] = [[]];
  let used = 0;
  while (queue.length > 0) {
    const c = queue.shift() as SlComponent;
    const size = 2 + c.text.length;
    const last = queue.length === 0;
    // Keep 2 bytes free for a CONTINUE component unless this is the last one.
    if (used + size <= SL_CAPACITY - (last ? 0 : 2)) {
      entries[entries.length - 1].push(c);
      used += size;
      continue;
    }
    const room = Math.max(0, SL_CAPACITY - used - 2);
    if (c.flags === 0 || c.flags === SL_CONTINUE) {
      entries[entries.length - 1].push({ flags: SL_CONTINUE, text: c.text.subarray(0, room) });
      queue.unshift({ flags: c.flags, text: c.text.subarray(room) });
    } else {
      entries[entries.length - 1].push({ flags: SL_CONTINUE, text: Buffer.alloc(0) });
      queue.unshift(c);
    }
    entries.push([]);
    used = 0;
  }
  return entries.map((components, i) => {
    const more = i < entries.length - 1;
    const body = components.flatMap((c) => [Buffer.from([c.flags, c.text.length]), c.text]);
    return encodeSuspEntry("SL", Buffer.concat([Buffer.from([more ? SL_CONTINUE : 0]), ...body]));
  });
}

export interface Timestamps {
  creation?: number;
  modify?: number;
  access?: number;
  attributes?: number;
}

const TF_FIELDS = ["creation", "modify", "access", "attributes"] as const;
const TF_LONG_FORM = 0x80;

function tfFlags(times: Timestamps): number {
  let flags = 0;
  for (let bit = 0; bit < TF_FIELDS.length; bit++) {
    const t = times[TF_FIELDS[bit]];
    if (t === undefined) continue;
    flags |= 1 << bit;
    if (!fitsRecordDate(t)) flags |= TF_LONG_FORM;
  }
  return flags;
}

function tfDataLength(flags: number): number {
  let count = 0;
  for (let bit = 0; bit < TF_FIELDS.length; bit++) if (flags & (1 << bit)) count++;
  return 1 + count * (flags & TF_LONG_FORM ? VOLUME_DATE_SIZE : RECORD_DATE_SIZE);
}

/** The length of the TF entry encodeTf makes of `times`. */
export function tfEntrySize(times: Timestamps): number {
  return SUSP_HEADER_SIZE + tfDataLength(tfFlags(times));
}

/** TF with the given times (Unix seconds); the 17-byte long form only when a time needs it. */
export function encodeTf(times: Timestamps): Buffer {
  const flags = tfFlags(times);
  const long = (flags & TF_LONG_FORM) !== 0;
  const size = long ? VOLUME_DATE_SIZE : RECORD_DATE_SIZE;
  const buf = newSuspEntry("TF", tfDataLength(flags));
  buf[SUSP_HEADER_SIZE] = flags;
  let o = SUSP_HEADER_SIZE + 1;
  for (const field of TF_FIELDS) {
    const t = times[field];
    if (t === undefined) continue;
    if (long) encodeVolumeDate(t, buf, o);
    else encodeRecordDate(t, buf, o);
    o += size;
  }
  return buf;
}

/** CL and PL: a block number, both-endian. */
export const LOCATION_ENTRY_SIZE = SUSP_HEADER_SIZE + 8;

function encodeLocation(signature: "CL" | "PL", block: number): Buffer {
  const buf = newSuspEntry(signature, LOCATION_ENTRY_SIZE - SUSP_HEADER_SIZE);
  writeBoth32(buf, SUSP_HEADER_SIZE, block);
  return buf;
}

/** CL: this file record stands for a directory relocated to `block`. */
export const encodeCl = (block: number) => encodeLocation("CL", block);
/** PL: in a relocated directory's "..": the block of its true parent. */
export const encodePl = (block: number) => encodeLocation("PL", block);
/** RE: this directory record is a relocated directory; readers hide it here. */
export const encodeRe = () => encodeSuspEntry("RE", Buffer.alloc(0));

/** Everything Rock Ridge said about one directory record. */
export interface RockRidgeInfo {
  px?: PosixAttributes & { hasSerial: boolean };
  /** PN: the two 32-bit halves of the device number. */
  device?: { high: number; low: number };
  name?: Buffer;
  /** NM said "." or "..". */
  nameSpecial?: "." | "..";
  symlink?: Buffer;
  times: Timestamps;
  childLink?: number;
  parentLink?: number;
  relocated: boolean;
  /** ZF or Z2: the file's bytes are zisofs-compressed. */
  zisofs?: ZisofsParams;
  /** Decoder state: the next NM / SL entry continues the current one. */
  nameContinues: boolean;
  symlinkContinues: boolean;
  /** Decoder state: the last SL component was CONTINUE/ROOT, so no "/" before the next. */
  symlinkJoin: boolean;
}

export function emptyRockRidgeInfo(): RockRidgeInfo {
  return { times: {}, relocated: false, nameContinues: false, symlinkContinues: false, symlinkJoin: true };
}

/** True for the signatures this decoder understands: a record has Rock Ridge if any appears. */
export function isRockRidgeSignature(signature: string): boolean {
  return ["PX", "PN", "SL", "NM", "TF", "CL", "PL", "RE", "RR"].includes(signature);
}

/** Fold one SUSP entry into `info`. Unknown or malformed entries are ignored, as Linux does. */
export function applyRockRidgeEntry(info: RockRidgeInfo, entry: SuspEntry): void {
  const d = entry.data;
  switch (entry.signature) {
    case "PX":
      if (d.length >= 32) {
        info.px = {
          mode: readBoth32(d, 0),
          nlink: readBoth32(d, 8),
          uid: readBoth32(d, 16),
          gid: readBoth32(d, 24),
          serial: d.length >= 40 ? readBoth32(d, 32) : 0,
          hasSerial: d.length >= 40,
        };
      }
      break;
    case "PN":
      if (d.length >= 16) info.device = { high: readBoth32(d, 0), low: readBoth32(d, 8) };
      break;
    case "NM":
      applyNm(info, d);
      break;
    case "SL":
      applySl(info, d);
      break;
    case "TF":
      applyTf(info, d);
      break;
    case "CL":
      if (d.length >= 8) info.childLink = readBoth32(d, 0);
      break;
    case "PL":
      if (d.length >= 8) info.parentLink = readBoth32(d, 0);
      break;
    case "RE":
      info.relocated = true;
      break;
    case "ZF":
    case "Z2":
      info.zisofs = decodeZf(entry);
      break;
  }
}

function applyNm(info: RockRidgeInfo, d: Buffer): void {
  if (d.length < 1) return;
  const flags = d[0];
  if (flags & NM_CURRENT) info.nameSpecial = ".";
  else if (flags & NM_PARENT) info.nameSpecial = "..";
  const chunk = d.subarray(1);
  info.name = info.nameContinues && info.name ? Buffer.concat([info.name, chunk]) : Buffer.from(chunk);
  info.nameContinues = (flags & NM_CONTINUE) !== 0;
}

function applySl(info: RockRidgeInfo, d: Buffer): void {
  if (d.length < 1) return;
  const parts: Buffer[] = info.symlinkContinues && info.symlink ? [info.symlink] : [];
  let join = info.symlinkContinues ? info.symlinkJoin : true;
  let o = 1;
  while (o + 2 <= d.length) {
    const flags = d[o];
    const len = d[o + 1];
    if (o + 2 + len > d.length) break;
    if (!join) parts.push(Buffer.from("/"));
    if (flags & SL_ROOT) parts.push(Buffer.from("/"));
    else if (flags & SL_CURRENT) parts.push(Buffer.from("."));
    else if (flags & SL_PARENT) parts.push(Buffer.from(".."));
    else parts.push(d.subarray(o + 2, o + 2 + len));
    join = (flags & (SL_CONTINUE | SL_ROOT)) !== 0;
    o += 2 + len;
  }
  info.symlink = Buffer.concat(parts);
  info.symlinkContinues = (d[0] & SL_CONTINUE) !== 0;
  info.symlinkJoin = join;
}

function applyTf(info: RockRidgeInfo, d: Buffer): void {
  if (d.length < 1) return;
  const flags = d[0];
  const long = (flags & TF_LONG_FORM) !== 0;
  const size = long ? 17 : 7;
  let o = 1;
  TF_FIELDS.forEach((field, bit) => {
    if (!(flags & (1 << bit)) || o + size > d.length) return;
    const t = long ? decodeVolumeDate(d, o) : decodeRecordDate(d, o);
    if (t !== null) info.times[field] = t;
    o += size;
  });
}
