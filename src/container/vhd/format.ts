/**
 * VHD as a container layer. A dynamic or differencing VHD starts with its
 * footer's copy (the cookie "conectix"); a fixed one is a raw disk with the
 * footer after it, found only at the end: it counts when its checksum is
 * right and its size is the file's less the footer (qemu-img, which looks at
 * the start only, calls such a file raw).
 */
import { CorruptImageError } from "../../errors.js";
import type { ContainerFormat } from "../format.js";
import { checkVhd } from "./check.js";
import { decodeVhdFooter, FOOTER_BYTES, footerProblem, hasVhdCookie } from "./footer.js";
import { DynamicVhdSource, FixedVhdSource, readVhdFooter } from "./source.js";

export const vhdFormat: ContainerFormat = {
  name: "vhd",
  async detect(head, source) {
    if (hasVhdCookie(head)) return true;
    if (source.size < FOOTER_BYTES * 2) return false;
    const end = await source.read(source.size - FOOTER_BYTES, FOOTER_BYTES);
    if (footerProblem(end)) return false;
    const footer = decodeVhdFooter(end, source.name);
    if (footer.diskType === "fixed") return footer.currentSize + FOOTER_BYTES === source.size;
    return footer.dataOffset !== null && footer.dataOffset < source.size;
  },
  async open(source, context) {
    const found = await readVhdFooter(source, context.onWarning);
    if (found.footer.diskType !== "fixed") return DynamicVhdSource.open(source, found, context);
    if (found.footer.currentSize + FOOTER_BYTES > source.size) {
      throw new CorruptImageError(
        `${source.name}: fixed VHD of ${found.footer.currentSize} bytes, but the file holds only ${source.size - FOOTER_BYTES} before its footer; the image is truncated`,
      );
    }
    return new FixedVhdSource(source, found);
  },
  check: (source) => checkVhd(source),
};
