/**
 * `--discard`: BLKDISCARD the range the image covers, then trust it to read
 * zeros only after seeing that it does. Discarded sectors read as zeros on
 * most SSDs and on loop devices (a punched hole), but the kernel no longer
 * promises it (BLKDISCARDZEROES always says no): some devices return old
 * data or garbage. So sectors spread over the range are read back, past the
 * page cache; one that is not zero means every zero run is written out.
 */
import type { FileSink } from "../io/file-sink.js";
import { FileSource } from "../io/file-source.js";
import { isAllZero } from "../io/zeros.js";

const SAMPLES = 64;
const SAMPLE_BYTES = 4096;

/** How many bytes from the start of the device now read as zeros: `length` rounded down to 4 KiB, or 0. */
export async function discardAndCheck(sink: FileSink, path: string, length: number, onWarning?: (message: string) => void): Promise<number> {
  // The kernel discards whole logical sectors only; a ragged image tail is written out.
  length -= length % SAMPLE_BYTES;
  if (length <= 0) return 0;
  if (!(await sink.discard(0, length))) {
    onWarning?.(`${path} does not support discard: its zero runs are written out`);
    return 0;
  }
  const device = await FileSource.open(path, { direct: true });
  try {
    const step = Math.max(SAMPLE_BYTES, Math.floor(length / SAMPLES / SAMPLE_BYTES) * SAMPLE_BYTES);
    for (let at = 0; at + SAMPLE_BYTES <= length; at += step) {
      if (!isAllZero(await device.read(at, SAMPLE_BYTES))) {
        onWarning?.(`${path} does not read zeros where it was discarded (at offset ${at}): its zero runs are written out`);
        return 0;
      }
    }
    return length;
  } finally {
    await device.close();
  }
}
