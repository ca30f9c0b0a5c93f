import type { Command } from "commander";
import { imageInfo, type ImageInfo, type LayerInfo } from "../info/image-info.js";
import { formatSize } from "../util/units.js";
import { formatTable, printJson, warn } from "./output.js";
import { writeStdout } from "./stdout.js";

function bytes(n: number): string {
  return n < 1024 ? `${n} bytes` : `${formatSize(n)} (${n} bytes)`;
}

function date(unix: number | null): string {
  return unix === null ? "-" : `${new Date(unix * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "")} UTC`;
}

const TABLE_NAME: Record<string, string> = { mbr: "MBR (dos)", gpt: "GPT" };

/** "zstd (seekable) over qcow2": the stack, outermost first. */
function formatLine(info: ImageInfo): string {
  if (info.layers.length === 0) return "raw";
  return info.layers.map((l) => `${l.format}${l.seekable ? "" : " (not seekable: platter convert makes a seekable copy)"}`).join(" over ");
}

const SIZE_KEYS = new Set(["virtualSize", "storedSize", "fileSize", "actualSize"]);

/** A layer's own details (cluster size, backing file...), one "key: value" each. */
function layerRows(layers: LayerInfo[]): string[][] {
  const rows: string[][] = [];
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (key === "format" || key === "seekable" || value === null || value === undefined) continue;
      const shown = SIZE_KEYS.has(key) ? bytes(value as number) : typeof value === "object" ? JSON.stringify(value) : String(value);
      rows.push([`  ${layer.format} ${key}:`, shown]);
    }
  }
  return rows;
}

function render(info: ImageInfo): string {
  const table = info.partitionTable === "none" ? "none" : `${TABLE_NAME[info.partitionTable]}, ${info.partitions} partition${info.partitions === 1 ? "" : "s"} (platter parts lists them)`;
  const rows: string[][] = [
    ["image:", info.image],
    ["format:", formatLine(info)],
    ...layerRows(info.layers),
    ...info.backingChain.flatMap((b, i) => [
      [`backing file ${i + 1}:`, `${b.path} (${b.format}, ${bytes(b.virtualSize)})`],
      ...layerRows(b.layers).filter(([key]) => !/ (virtualSize|backingFile):$/.test(key)),
    ]),
    ["virtual size:", bytes(info.virtualSize)],
    ["seekable:", info.seekable ? "yes" : "no (platter convert makes a seekable copy)"],
    ["file size:", bytes(info.fileSize) + (info.allocatedSize !== null && info.allocatedSize < info.fileSize ? `, ${formatSize(info.allocatedSize)} allocated` : "")],
    ["partition table:", table],
    ["filesystem:", info.filesystem ? [info.filesystem, info.label && `label "${info.label}"`, info.uuid && `UUID ${info.uuid}`].filter(Boolean).join(", ") : "-"],
  ];
  const lines = [formatTable(rows)];
  const iso = info.iso9660;
  if (iso) {
    const fields: Array<[string, string]> = [
      ["volume id", iso.volumeId],
      ["system id", iso.systemId],
      ["volume set id", iso.volumeSetId],
      ["publisher", iso.publisherId],
      ["data preparer", iso.dataPreparerId],
      ["application", iso.applicationId],
    ];
    const isoRows = fields.filter(([, v]) => v !== "").map(([k, v]) => [`  ${k}:`, v]);
    isoRows.push(["  created:", date(iso.creation)], ["  modified:", date(iso.modification)]);
    isoRows.push(["  blocks:", `${iso.volumeBlocks} x 2048 bytes`]);
    isoRows.push(["  joliet:", iso.joliet ? `level ${iso.joliet.level}, volume id ${iso.joliet.volumeId}` : "no"]);
    isoRows.push(["  rock ridge:", iso.rockRidge ?? "no"]);
    lines.push(formatTable(isoRows));
    if (iso.bootCatalog) {
      lines.push(`  El Torito boot catalogue at block ${iso.bootCatalog.block}:`);
      const table = [["    #", "platform", "bootable", "emulation", "load sectors", "image block", "image offset"]];
      iso.bootCatalog.entries.forEach((e, i) =>
        table.push([`    ${i + 1}`, e.platform, e.bootable ? "yes" : "no", e.emulation, String(e.loadSectors), String(e.imageBlock), String(e.imageOffset)]),
      );
      lines.push(formatTable(table, [4, 5, 6]));
    }
  }
  return `${lines.join("\n")}\n`;
}

export function registerInfo(program: Command): Command {
  return program
    .command("info")
    .description("what an image is: format, sizes, and what platter finds in it (ISO 9660 ids, El Torito boot entries)")
    .argument("<image>", "image file or block device")
    .option("--json", "print the report as JSON")
    .action(async (image: string, opts: { json?: boolean }) => {
      const info = await imageInfo(image);
      for (const w of info.warnings) warn(w);
      if (opts.json) printJson(info);
      else writeStdout(render(info));
    });
}
