/**
 * VHD as a container layer. A dynamic or differencing VHD starts with its
 * footer's copy (the cookie "conectix"); a fixed one is a raw disk with the
 * footer after it, found only at the end: it counts when its checksum is
 * right and its size is the file's less the footer (qemu-img, which looks at
 * the start only, calls such a file raw).
 */
import type { ContainerFormat } from "../format.js";
import { decodeVhdFooter, FOOTER_BYTES, footerProblem, hasVhdCookie } from "./footer.js";

export const vhdFormat: ContainerFormat = {
  name: "vhd",
  detect(head, source, end) {
    if (hasVhdCookie(head)) return true;
    if (!end || end.length !== FOOTER_BYTES) return false;
    if (footerProblem(end)) return false;
    const footer = decodeVhdFooter(end, source.name);
    if (footer.diskType === "fixed") return footer.currentSize + FOOTER_BYTES === source.size;
    return footer.dataOffset !== null && footer.dataOffset < source.size;
  },
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source, context) => (await import("./source.js")).openVhd(source, context),
  check: async (source) => (await import("./check.js")).checkVhd(source),
};
