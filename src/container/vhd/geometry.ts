/**
 * The CHS geometry a VHD footer carries. Virtual PC sized a disk by it
 * (cylinders × heads × sectors), Hyper-V and Windows by the footer's current
 * size; qemu follows one or the other depending on the creator application.
 * platter keeps the size exact and writes the geometry that covers it.
 */
import type { ChsGeometry } from "./footer.js";

/** The largest geometry a footer holds: 65535 cylinders, 16 heads, 255 sectors (about 127 GiB). */
const MAX_SECTORS = 65535 * 16 * 255;

/** The specification's algorithm (appendix: CHS calculation), for a disk of `totalSectors`. */
export function chsGeometry(totalSectors: number): ChsGeometry {
  const sectors = Math.min(totalSectors, MAX_SECTORS);
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (sectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
    heads = Math.max(4, Math.floor((cylinderTimesHeads + 1023) / 1024));
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack };
}

export function chsSectors(g: ChsGeometry): number {
  return g.cylinders * g.heads * g.sectorsPerTrack;
}

/**
 * The geometry for the smallest disk of at least `totalSectors` the
 * algorithm yields, as qemu searches for it: a Virtual PC sizing the disk by
 * its geometry then sees every sector. Past the largest geometry, the
 * largest (readers then go by the current size, qemu included).
 */
export function coveringGeometry(totalSectors: number): ChsGeometry {
  if (totalSectors >= MAX_SECTORS) return chsGeometry(MAX_SECTORS);
  for (let extra = 0; ; extra++) {
    const g = chsGeometry(totalSectors + extra);
    if (chsSectors(g) >= totalSectors) return g;
  }
}
