/**
 * `platter check` for VHD. qemu has no check for it (`qemu-img check -f
 * vpc`: "This image format does not support checks"), so these are the
 * specification's invariants: both footers' checksums, the copy at offset
 * 0 the same as the footer at the end (either one damaged is a problem the
 * image survives: the other stands in), a fixed disk's size the file's
 * less its footer; for a dynamic or differencing disk the dynamic header's
 * checksum, then every BAT entry walked as the opener walks it (inside the
 * file, clear of the footers, header, BAT and locators, apart from every
 * other block), but every problem listed instead of the first thrown.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { CheckFindings, errorSink } from "../check-findings.js";
import type { ContainerCheckReport } from "../format.js";
import { FOOTER_BYTES, footerProblem, hasVhdCookie } from "./footer.js";
import { readDynamicLayout, readVhdFooter } from "./source.js";

export async function checkVhd(file: BlockSource): Promise<ContainerCheckReport> {
  const findings = new CheckFindings();
  const error = errorSink(findings);
  const where = `${file.name}: VHD`;
  if (file.size < FOOTER_BYTES) {
    error(`${where}: too small for a VHD (${file.size} bytes)`);
    return findings.report("vhd");
  }
  const endAt = file.size - FOOTER_BYTES;
  const end = await file.read(endAt, FOOTER_BYTES);
  const head = await file.read(0, FOOTER_BYTES);
  const hasCopy = endAt > 0 && hasVhdCookie(head);
  const endProblem = footerProblem(end);
  const copyProblem = hasCopy ? footerProblem(head) : undefined;
  if (endProblem) error(`${where} footer at byte ${endAt}: ${endProblem}${hasCopy && !copyProblem ? " (its copy at byte 0 stands in)" : ""}`);
  if (copyProblem) error(`${where} footer copy at byte 0: ${copyProblem}${endProblem ? "" : " (the footer at the end stands)"}`);
  if (hasCopy && !endProblem && !copyProblem && !head.equals(end)) error(`${where} footer copy at byte 0 differs from the footer at byte ${endAt}`);

  let found: Awaited<ReturnType<typeof readVhdFooter>>;
  try {
    found = await readVhdFooter(file);
  } catch (err) {
    if (!(err instanceof CorruptImageError)) throw err;
    if (!endProblem && !copyProblem) error(err.message);
    return findings.report("vhd");
  }
  const { footer } = found;
  if (footer.diskType === "fixed") {
    const held = file.size - FOOTER_BYTES;
    if (footer.currentSize !== held) {
      error(`${where}: fixed disk of ${footer.currentSize} bytes, but the file holds ${held} before its footer`, footer.currentSize > held ? [held, footer.currentSize - held] : undefined);
    }
    return findings.report("vhd");
  }
  await readDynamicLayout(file, found, error);
  return findings.report("vhd");
}
