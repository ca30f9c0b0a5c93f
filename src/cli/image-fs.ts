/** The CLI's side of image/open-filesystem.ts: --part parsed, warnings printed. */
import { openImageFilesystem as openInLibrary, type ImageFilesystem } from "../image/open-filesystem.js";
import { parseCount } from "../util/units.js";
import { warn } from "./output.js";

export type OpenedImage = ImageFilesystem;

export function openImageFilesystem(image: string, part?: string): Promise<ImageFilesystem> {
  const number = part === undefined ? undefined : parseCount(part, "partition number", 1);
  return openInLibrary(image, { part: number, onWarning: warn });
}
