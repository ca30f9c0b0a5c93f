/**
 * Runs of set bits in an allocation bitmap, least significant bit first
 * (the order of ext's block bitmaps, exFAT's allocation bitmap and NTFS's
 * $Bitmap). Whole 0x00 and 0xFF bytes are stepped over a byte at a time.
 */
export function* setBitRuns(bitmap: Buffer, bitCount: number): Generator<[first: number, end: number]> {
  const bytes = Math.min(bitmap.length, Math.ceil(bitCount / 8));
  let runStart = -1;
  for (let i = 0; i < bytes; i++) {
    const byte = bitmap[i] as number;
    if (byte === 0xff && runStart >= 0) continue;
    if (byte === 0x00 && runStart < 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      const set = (byte >> bit) & 1;
      if (set && runStart < 0) runStart = i * 8 + bit;
      else if (!set && runStart >= 0) {
        if (runStart < bitCount) yield [runStart, Math.min(bitCount, i * 8 + bit)];
        runStart = -1;
      }
    }
  }
  if (runStart >= 0 && runStart < bitCount) yield [runStart, Math.min(bitCount, bytes * 8)];
}
