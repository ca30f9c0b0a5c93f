import type { Command } from "commander";
import { openImage } from "../image/open-image.js";
import { type PartitionReport, reportPartitions } from "../image/partition-report.js";
import { formatSize } from "../util/units.js";
import { formatTable, printJson, warn } from "./output.js";
import { writeStdout } from "./stdout.js";

const SCHEME_TITLE: Record<string, string> = { mbr: "MBR (dos) partition table", gpt: "GPT partition table" };

export function registerParts(program: Command): Command {
  return program
    .command("parts")
    .description("list the partitions of an image or device: where they are, their type and filesystem")
    .argument("<image>", "disk image file or block device")
    .option("--json", "print the partition table as JSON")
    .action(async (image: string, opts: { json?: boolean }) => {
      const opened = await openImage(image, { purpose: "listing partitions", onWarning: warn });
      let report: PartitionReport;
      try {
        report = await reportPartitions(opened.source);
      } finally {
        await opened.close();
      }
      if (opts.json) {
        printJson(report);
        return;
      }
      writeStdout(formatReport(image, report));
      for (const w of report.warnings) warn(w);
    });
}

function formatReport(image: string, r: PartitionReport): string {
  const sectors = Math.floor(r.size / r.sectorSize);
  const lines = [`${image}: ${formatSize(r.size)}, ${r.size} bytes, ${sectors} sectors of ${r.sectorSize} bytes`];
  const whole = r.filesystem ? `${r.filesystem}${r.label ? ` "${r.label}"` : ""}` : null;
  if (r.scheme === "none") {
    lines.push(whole ? `no partition table: the whole image is ${whole}` : "no partition table, and no filesystem platter recognises");
    return `${lines.join("\n")}\n`;
  }
  lines.push(`${SCHEME_TITLE[r.scheme]}, disk identifier ${r.id}${whole ? `; the whole image is also ${whole} (hybrid)` : ""}`);
  if (r.partitions.length === 0) {
    lines.push("no partitions");
    return `${lines.join("\n")}\n`;
  }
  const gpt = r.scheme === "gpt";
  // MBR: the type byte as fdisk -l and sfdisk -l show it (83, c, 5: hex without a leading zero) beside its name.
  const header = ["#", "Boot", "Start", "End", "Sectors", "Size", "Offset", ...(gpt ? [] : ["Id"]), "Type", ...(gpt ? ["Name"] : []), "Filesystem", "Label"];
  const rows = r.partitions.map((p) => [
    String(p.number),
    p.bootable ? "*" : "",
    String(p.start),
    String(p.start + p.sectors - 1),
    String(p.sectors),
    formatSize(p.length),
    String(p.offset),
    ...(gpt ? [] : [Number.parseInt(p.type, 16).toString(16)]),
    p.typeName,
    ...(gpt ? [p.name ?? ""] : []),
    p.container ? "" : (p.filesystem ?? "-"),
    p.label ?? "",
  ]);
  lines.push("", formatTable([header, ...rows], gpt ? [0, 2, 3, 4, 5, 6] : [0, 2, 3, 4, 5, 6, 7]));
  return `${lines.join("\n")}\n`;
}
