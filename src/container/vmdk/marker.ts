/**
 * The markers of a streamOptimized extent. A compressed grain starts with a
 * grain marker: the grain's first sector (LBA) and the compressed size,
 * then the deflate (zlib) stream. A metadata marker (size 0) takes a whole
 * sector and says what follows: a grain table, the grain directory, the
 * footer, or the end of the stream.
 */
import { readUint64 } from "../../util/uint64.js";
import { SECTOR } from "./sparse-header.js";

export const GRAIN_MARKER_BYTES = 12;

export const MarkerType = { endOfStream: 0, grainTable: 1, grainDirectory: 2, footer: 3 } as const;

export interface GrainMarker {
  /** First sector of the grain in the extent. */
  lba: number;
  /** Bytes of compressed data after the marker. */
  size: number;
}

export function decodeGrainMarker(buf: Buffer, where: string): GrainMarker {
  return { lba: readUint64(buf, 0, `${where}: grain marker LBA`), size: buf.readUInt32LE(8) };
}

export function encodeGrainMarker(marker: GrainMarker): Buffer {
  const buf = Buffer.alloc(GRAIN_MARKER_BYTES);
  buf.writeBigUInt64LE(BigInt(marker.lba), 0);
  buf.writeUInt32LE(marker.size, 8);
  return buf;
}

export interface MetadataMarker {
  /** Sectors of metadata after the marker's own sector. */
  sectors: number;
  type: number;
}

/** The sector-long marker, or undefined if `buf` is not one (a grain marker has a non-zero size). */
export function decodeMetadataMarker(buf: Buffer): MetadataMarker | undefined {
  if (buf.length < 16 || buf.readUInt32LE(8) !== 0) return undefined;
  const sectors = buf.readBigUInt64LE(0);
  if (sectors > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { sectors: Number(sectors), type: buf.readUInt32LE(12) };
}

export function encodeMetadataMarker(marker: MetadataMarker): Buffer {
  const buf = Buffer.alloc(SECTOR);
  buf.writeBigUInt64LE(BigInt(marker.sectors), 0);
  buf.writeUInt32LE(marker.type, 12);
  return buf;
}
