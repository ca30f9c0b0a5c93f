/**
 * qcow2 header extensions (docs/interop/qcow2.txt, "Header extensions"):
 * after the header, up to the backing file name or the end of cluster 0,
 * a list of { type u32, length u32, data, padding to 8 } ending with type 0.
 * Pure codec.
 */
import { CorruptImageError } from "../../errors.js";
import { readUint64BE } from "../../util/uint64.js";

export const ExtensionType = {
  end: 0,
  backingFormat: 0xe2792aca,
  featureNames: 0x6803f857,
  bitmaps: 0x23852875,
  cryptoHeader: 0x0537be77,
  dataFile: 0x44415441,
} as const;

export interface HeaderExtension {
  type: number;
  data: Buffer;
  /** Byte offset in the file, for messages. */
  offset: number;
}

/** What the known extensions say. */
export interface Qcow2Extensions {
  /** "qcow2", "raw"...: how to open the backing file. */
  backingFormat?: string;
  /** The external data file's name (incompatible bit 2). */
  dataFile?: string;
  /** Feature names for messages, keyed "incompatible:5", "compatible:0", "autoclear:1". */
  featureNames: Map<string, string>;
  bitmaps?: { count: number; directorySize: number; directoryOffset: number };
  cryptoHeader?: { offset: number; length: number };
}

const FEATURE_KINDS = ["incompatible", "compatible", "autoclear"];
const FEATURE_ENTRY = 48;

const pad8 = (n: number) => Math.ceil(n / 8) * 8;

/** The extensions in `cluster0` between `start` (the header's length) and `end`. */
export function decodeHeaderExtensions(cluster0: Buffer, start: number, end: number): HeaderExtension[] {
  const list: HeaderExtension[] = [];
  let at = start;
  const limit = Math.min(end, cluster0.length);
  while (at + 8 <= limit) {
    const type = cluster0.readUInt32BE(at);
    if (type === ExtensionType.end) break;
    const length = cluster0.readUInt32BE(at + 4);
    if (length > limit - at - 8) {
      throw new CorruptImageError(`qcow2 header extension 0x${type.toString(16)} at byte ${at}: its ${length} bytes run past the header area (byte ${limit})`);
    }
    list.push({ type, data: cluster0.subarray(at + 8, at + 8 + length), offset: at });
    at += 8 + pad8(length);
  }
  return list;
}

/** The extension area: each padded to 8 bytes, then the end marker. */
export function encodeHeaderExtensions(list: Array<{ type: number; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const { type, data } of list) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(type, 0);
    head.writeUInt32BE(data.length, 4);
    parts.push(head, data, Buffer.alloc(pad8(data.length) - data.length));
  }
  parts.push(Buffer.alloc(8));
  return Buffer.concat(parts);
}

export function interpretExtensions(list: HeaderExtension[]): Qcow2Extensions {
  const result: Qcow2Extensions = { featureNames: new Map() };
  for (const ext of list) {
    const { data, offset } = ext;
    switch (ext.type) {
      case ExtensionType.backingFormat:
        result.backingFormat = data.toString("utf8");
        break;
      case ExtensionType.dataFile:
        result.dataFile = data.toString("utf8");
        break;
      case ExtensionType.featureNames:
        for (let i = 0; i + FEATURE_ENTRY <= data.length; i += FEATURE_ENTRY) {
          const kind = FEATURE_KINDS[data[i] as number];
          const name = data.subarray(i + 2, i + FEATURE_ENTRY);
          const nul = name.indexOf(0);
          if (kind) result.featureNames.set(`${kind}:${data[i + 1]}`, name.subarray(0, nul < 0 ? name.length : nul).toString("utf8"));
        }
        break;
      case ExtensionType.bitmaps:
        if (data.length < 24) throw new CorruptImageError(`qcow2 bitmaps extension at byte ${offset}: ${data.length} bytes, need 24`);
        result.bitmaps = {
          count: data.readUInt32BE(0),
          directorySize: readUint64BE(data, 8, `qcow2 bitmaps extension at byte ${offset}: directory size`),
          directoryOffset: readUint64BE(data, 16, `qcow2 bitmaps extension at byte ${offset}: directory offset`),
        };
        break;
      case ExtensionType.cryptoHeader:
        if (data.length < 16) throw new CorruptImageError(`qcow2 encryption header extension at byte ${offset}: ${data.length} bytes, need 16`);
        result.cryptoHeader = {
          offset: readUint64BE(data, 0, `qcow2 encryption header extension at byte ${offset}: offset`),
          length: readUint64BE(data, 8, `qcow2 encryption header extension at byte ${offset}: length`),
        };
        break;
      default:
        break; // unknown extensions may be ignored (the spec says so)
    }
  }
  return result;
}
