/**
 * Helpers for the VHD/VHDX/VMDK/VDI tests: the images qemu made (built once
 * by make-vdisk-images.sh from the MBR fixture disk), opened as every command
 * opens them.
 */
import { fixture } from "../helpers/fixtures.js";
import { openImage, type OpenedImage } from "../../src/image/open-image.js";

/** test/fixtures/out/vdisk, and the raw disk they were made from. */
export async function vdiskFixtures(): Promise<{ dir: string; disk: string }> {
  const disk = await fixture("make-mbr-image.sh", "mbr.img");
  const dir = await fixture("make-vdisk-images.sh", "vdisk", [disk]);
  return { dir, disk };
}

/** openImage with no index cache, its warnings collected. */
export function openVdisk(path: string, warnings: string[] = [], noBacking = false): Promise<OpenedImage> {
  return openImage(path, { indexCache: false, noBacking, onWarning: (m) => warnings.push(m) });
}
