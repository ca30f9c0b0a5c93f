/**
 * A qcow2 refcount block: one cluster of refcounts, each refcount_bits wide
 * (1 to 64 bits, 2^refcount_order). Below a byte, bit 0 is the least
 * significant bit of its byte; from a byte up, entries are big-endian.
 * Pure codec.
 */

/** The refcount of entry `index`. A 64-bit refcount past 2^53 comes back imprecise (and absurd). */
export function getRefcount(block: Buffer, index: number, order: number): number {
  switch (order) {
    case 4:
      return block.readUInt16BE(index * 2);
    case 3:
      return block[index] as number;
    case 5:
      return block.readUInt32BE(index * 4);
    case 6:
      return block.readUInt32BE(index * 8) * 2 ** 32 + block.readUInt32BE(index * 8 + 4);
    default: {
      const bits = 2 ** order;
      const bit = index * bits;
      return ((block[bit >>> 3] as number) >>> (bit & 7)) & ((1 << bits) - 1);
    }
  }
}

export function setRefcount(block: Buffer, index: number, order: number, value: number): void {
  switch (order) {
    case 4:
      block.writeUInt16BE(value, index * 2);
      return;
    case 3:
      block[index] = value;
      return;
    case 5:
      block.writeUInt32BE(value, index * 4);
      return;
    case 6:
      block.writeUInt32BE(Math.floor(value / 2 ** 32), index * 8);
      block.writeUInt32BE(value % 2 ** 32, index * 8 + 4);
      return;
    default: {
      const bits = 2 ** order;
      const bit = index * bits;
      const mask = ((1 << bits) - 1) << (bit & 7);
      const at = bit >>> 3;
      block[at] = ((block[at] as number) & ~mask) | ((value << (bit & 7)) & mask);
    }
  }
}

/** The largest refcount an entry can hold. */
export function maxRefcount(order: number): number {
  return order >= 6 ? Number.MAX_SAFE_INTEGER : 2 ** 2 ** order - 1;
}
