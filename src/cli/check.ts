import type { Command } from "commander";
import { checkImage, type ImageCheckReport } from "../image/check-image.js";
import { formatSize } from "../util/units.js";
import { printJson, warn } from "./output.js";

const HELP = `
qcow2: the refcounts and tables, counted as \`qemu-img check\` counts them
(leaked clusters waste space; corruptions put data at risk).
VHDX: both headers and region tables, a log left to replay, the metadata,
and every BAT entry (past the end of the file or inside the headers, log or
metadata: what qemu-img check finds; an invalid state; blocks sharing bytes).
VMDK (monolithicSparse, streamOptimized, split): every grain table entry
(past the end of the file, as qemu-img check finds; inside the metadata or a
table; grains sharing bytes), compressed grains' markers, the redundant
grain directory against the primary, extent files that are missing.
VHD (qemu-img has no check for it): both footers, the dynamic header and
every BAT entry, as the specification has them.
Compressed layers (.zst .xz .gz .bz2): decoded to the end, every checksum
verified, as \`zstd -t\` / \`xz -t\` test them. A raw image has nothing to check.
Each range of the disk a corruption puts in doubt is named with the
partition that holds it. Nothing is repaired.

Exit status: 0 clean, 1 problems found (or the image cannot be read).`;

export function registerCheck(program: Command): Command {
  return program
    .command("check")
    .description("check a qcow2, VHDX, VMDK, VHD or compressed image for corruption and leaks, as qemu-img check does")
    .argument("<image>", "image file")
    .option("--json", "print the report as JSON")
    .addHelpText("after", HELP)
    .action(async (image: string, opts: { json?: boolean }) => {
      const report = await checkImage(image);
      for (const w of report.warnings) warn(w);
      if (opts.json) printJson(report);
      else process.stdout.write(render(report));
      if (!report.clean) process.exitCode = 1;
    });
}

function render(r: ImageCheckReport): string {
  if (r.layers.length === 0) return `${r.image}: a raw image: no container structure to check\n`;
  const lines: string[] = [];
  for (const c of r.checks) {
    for (const p of c.problems) lines.push(p.message); // qemu-img check's lines: "ERROR cluster 7 refcount=0 reference=1", "Leaked cluster 9 ..."
    if (c.problemsNotListed > 0) lines.push(`... and ${c.problemsNotListed} more problems in the ${c.format} layer`);
  }
  if (r.clean) lines.push(`No errors were found on ${r.image} (${r.layers.join(" over ")}).`);
  if (r.corruptions > 0) lines.push(`${r.corruptions} errors were found on the image. Data may be corrupted, or further writes to the image may corrupt it.`);
  if (r.leaks > 0) lines.push(`${r.leaks} leaked clusters were found on the image. This means waste of disk space, but no harm to data.`);
  for (const d of r.damaged) {
    const where = d.partitions.length
      ? d.partitions.map((p) => `partition ${p.number}${p.filesystem ? ` (${[p.filesystem, p.label && `"${p.label}"`].filter(Boolean).join(" ")})` : ""}`).join(", ")
      : "no partition (outside every one, or the disk has no table)";
    lines.push(`in doubt: ${formatSize(d.length)} at disk offset ${d.offset} (${d.length} bytes), in ${where}`);
  }
  return `${lines.join("\n")}\n`;
}
