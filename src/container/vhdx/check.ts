/**
 * `platter check` for VHDX, what `qemu-img check` finds (qemu's
 * vhdx_co_check: BAT entries past the end of the file or inside the
 * headers, log, BAT or metadata regions; a log that needs replaying, which
 * it refuses to read without `-r all`) and what the specification (MS-VHDX)
 * requires beyond it: both headers and both region tables sound (one
 * damaged is a problem the image survives: the other stands in), two valid
 * headers that share a sequence number identical (else qemu cannot tell
 * which is current), the metadata items present and sane, every BAT state valid for the disk's type, and no two
 * blocks sharing bytes. The tables are walked as the opener walks them,
 * every problem listed instead of the first thrown. A log is checked and
 * replayed in memory, as the opener does, and the tables checked as replayed.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { CheckFindings, errorSink } from "../check-findings.js";
import type { ContainerCheckReport } from "../format.js";
import { MiB } from "./bat.js";
import { HEADER_BYTES, HEADER_OFFSETS, hasLog, headerProblem } from "./header.js";
import { planReplay } from "./log.js";
import { REGION_TABLE_BYTES, REGION_TABLE_OFFSETS, regionTableProblem } from "./region-table.js";
import { ReplayedFile } from "./replayed-file.js";
import { currentHeader, readVhdxTables } from "./source.js";

export async function checkVhdx(file: BlockSource): Promise<ContainerCheckReport> {
  const findings = new CheckFindings();
  const error = errorSink(findings);
  const where = `${file.name}: VHDX`;
  if (file.size < MiB) {
    error(`${where}: ${file.size} bytes, less than the 1 MiB header section`);
    return findings.report("vhdx");
  }
  const headers: Buffer[] = [];
  for (const at of HEADER_OFFSETS) {
    const bytes = await file.read(at, HEADER_BYTES);
    const problem = headerProblem(bytes);
    if (problem) error(`${where} header at byte ${at}: ${problem}`);
    else headers.push(bytes);
  }
  if (headers.length === 0) return findings.report("vhdx");
  if (headers.length === 2 && headers[0].readBigUInt64LE(8) === headers[1].readBigUInt64LE(8) && !headers[0].equals(headers[1])) {
    error(`${where}: both headers have sequence number ${headers[0].readBigUInt64LE(8)} but differ`);
  }
  const header = await currentHeader(file, where);

  let view: BlockSource = file;
  if (hasLog(header)) {
    try {
      if (header.logVersion !== 0) throw new UnsupportedError(`${where}: log version ${header.logVersion} (platter replays version 0)`);
      const plan = await planReplay(file, header.logOffset, header.logLength, header.logGuid, `${where} log`);
      if (plan) {
        error(`${where}: the log holds ${plan.entries} change(s) its writer did not finish applying (qemu-img check -r all replays them); the tables are checked as replayed`);
        view = new ReplayedFile(file, plan.writes, plan.lastFileOffset);
      } else {
        error(`${where}: the header asks for a log replay, but the log holds no valid entry`);
      }
    } catch (err) {
      if (!(err instanceof CorruptImageError || err instanceof UnsupportedError)) throw err;
      error(err.message);
    }
  }
  for (const at of REGION_TABLE_OFFSETS) {
    const problem = regionTableProblem(await view.read(at, REGION_TABLE_BYTES));
    if (problem) error(`${where} region table at byte ${at}: ${problem}`);
  }
  await readVhdxTables(view, header, where, error);
  return findings.report("vhdx");
}
