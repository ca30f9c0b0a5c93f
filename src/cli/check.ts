import type { Command } from "commander";
import { escapeName, hasRawBytes, nameBytes, printableName } from "../fs/names.js";
import { checkImage, type DamagedPartition, type ImageCheckReport } from "../image/check-image.js";
import { type FileHit, OWNERS_LISTED } from "../image/damage-owners.js";
import { formatSize } from "../util/units.js";
import { printJson, warn } from "./output.js";
import { writeStdout } from "./stdout.js";

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
partition that holds it and, where platter reads its filesystem (ext2/3/4,
FAT, exFAT, squashfs, ISO 9660), the files and filesystem structures it
hits (the first ${OWNERS_LISTED} of each). Nothing is repaired.

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
      if (opts.json) printJson(jsonReport(report));
      else writeStdout(render(report));
      if (!report.clean) process.exitCode = 1;
    });
}

/** JSON paths are printable (U+FFFD for each byte that is not UTF-8), with the exact bytes in `pathBytes` then, as ls --json gives them. */
function jsonReport(r: ImageCheckReport): unknown {
  const jsonFile = (f: FileHit) => ({ ...f, path: printableName(f.path), ...(hasRawBytes(f.path) ? { pathBytes: nameBytes(f.path).toString("base64") } : {}) });
  return {
    ...r,
    damaged: r.damaged.map((d) => ({ ...d, partitions: d.partitions.map((p) => ({ ...p, files: p.files?.map(jsonFile) ?? null })) })),
  };
}

function describeHolder(p: DamagedPartition): string {
  const fs = p.filesystem ? ` (${[p.filesystem, p.label && `"${p.label}"`].filter(Boolean).join(" ")})` : "";
  return p.number === null ? `the whole disk${fs}` : `partition ${p.number}${fs}`;
}

/** "bytes 65536-131071" of a file or structure. */
function byteSpan(offset: number, length: number): string {
  return length === 1 ? `byte ${offset}` : `bytes ${offset}-${offset + length - 1}`;
}

/** One line per file: the bytes of it the range holds, and whether its inode or block map is there too. */
function describeFiles(files: FileHit[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < files.length; ) {
    const path = files[i]?.path as string;
    const data: string[] = [];
    const map: string[] = [];
    for (; i < files.length && files[i]?.path === path; i++) {
      const f = files[i] as FileHit;
      if (!f.map) data.push(byteSpan(f.offset, f.length));
      else map.push(f.length > 0 ? `its inode or block map, for ${byteSpan(f.offset, f.length)}` : "its inode");
    }
    const parts = [...(data.length ? [`${data.join(", ")} of the file`] : []), ...map];
    lines.push(`${escapeName(path)} (${parts.join("; ")})`);
  }
  return lines;
}

/** The indented lines under "in doubt: ...": what the range hits in each partition. */
function ownerLines(partitions: DamagedPartition[]): string[] {
  const lines: string[] = [];
  const listed = partitions.filter((p) => p.files !== null || p.metadata.length > 0);
  for (const p of listed) {
    const indent = listed.length > 1 ? "    " : "  ";
    if (listed.length > 1) lines.push(`  in ${describeHolder(p)}:`);
    for (const m of p.metadata) lines.push(`${indent}${p.filesystem} metadata: ${m.what} (${byteSpan(m.offset, m.length)} of it)`);
    if (p.metadataNotListed > 0) lines.push(`${indent}... and ${p.metadataNotListed} more ${p.filesystem} structures`);
    for (const line of describeFiles(p.files ?? [])) lines.push(`${indent}${line}`);
    if (p.filesNotListed > 0) lines.push(`${indent}... and ${p.filesNotListed} more files`);
    if (p.files?.length === 0 && p.metadata.length === 0) lines.push(`${indent}no file or ${p.filesystem} structure: free space, as far as platter can tell`);
  }
  return lines;
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
    const where = d.partitions.length ? d.partitions.map(describeHolder).join(", ") : "no partition (outside every one, or the disk has no table)";
    lines.push(`in doubt: ${formatSize(d.length)} at disk offset ${d.offset} (${d.length} bytes), in ${where}`);
    lines.push(...ownerLines(d.partitions));
  }
  return `${lines.join("\n")}\n`;
}
