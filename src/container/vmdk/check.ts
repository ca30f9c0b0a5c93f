/**
 * `platter check` of a VMDK that does not open (an opened one checks its
 * extents itself: VmdkSource.check). A hosted sparse file whose header,
 * footer or grain directory is unsound reports that; one that opens is
 * walked table by table (SparseExtent.check). A descriptor is parsed: a
 * missing extent is what refused the open, and check-image reports it.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { CheckFindings, errorSink } from "../check-findings.js";
import type { ContainerCheckReport } from "../format.js";
import { parseDescriptor } from "./descriptor.js";
import { readDescriptorText } from "./source.js";
import { SparseExtent } from "./sparse-extent.js";
import { hasSparseMagic, SECTOR } from "./sparse-header.js";

export async function checkVmdk(file: BlockSource): Promise<ContainerCheckReport> {
  const findings = new CheckFindings();
  const error = errorSink(findings);
  const where = `${file.name}: VMDK`;
  try {
    if (hasSparseMagic(await file.read(0, Math.min(file.size, SECTOR)))) {
      await (await SparseExtent.open(file, where)).check(error);
    } else {
      const text = await readDescriptorText(file);
      if (text === undefined) error(`${where}: neither a sparse extent nor a descriptor`);
      else parseDescriptor(text, `${where} descriptor`);
    }
  } catch (err) {
    if (!(err instanceof CorruptImageError)) throw err;
    error(err.message);
  }
  return findings.report("vmdk");
}
