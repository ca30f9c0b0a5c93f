/**
 * Device numbers as Linux filesystems store them (include/linux/kdev_t.h):
 * the 32-bit "new" encoding ext4 and squashfs write, and the 16-bit "old"
 * one (8-bit major and minor) ext2 still uses for small numbers.
 */

/** new_decode_dev: 12-bit major in bits 8-19, 20-bit minor split around it. */
export function newDecodeDev(dev: number): [major: number, minor: number] {
  return [(dev & 0xfff00) >>> 8, (dev & 0xff) | ((dev >>> 12) & 0xfff00)];
}

/** old_decode_dev: major in the high byte of 16 bits, minor in the low one. */
export function oldDecodeDev(dev: number): [major: number, minor: number] {
  return [(dev >>> 8) & 0xff, dev & 0xff];
}
