/** Test data for capture tests: images whose every sector is non-zero, so a lost sector always shows. */

export const SECTOR = 512;

/** Deterministic xorshift bytes, no zero byte anywhere. */
export function pattern(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil(size / 4) * 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE((x | 0x01010101) >>> 0, i);
  }
  return out.subarray(0, size);
}

/** What a perfect rescue makes of `data`: the given 512-byte sectors zeroed. */
export function zeroed(data: Buffer, sectors: number[]): Buffer {
  const out = Buffer.from(data);
  for (const s of sectors) out.fill(0, s * SECTOR, Math.min(out.length, (s + 1) * SECTOR));
  return out;
}

/** [first, first+1, ..., last] */
export function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** A seeded Park-Miller generator: random(n) is an integer in [0, n), the same sequence for the same seed. */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 48271) % 2147483647;
    return state % n;
  };
}
