import type { ProbeReader } from "./reader.js";

/** What is on a partition, in blkid's words (TYPE, LABEL, UUID, VERSION). */
export interface ProbeResult {
  filesystem: string;
  label: string | null;
  uuid: string | null;
  version?: string;
}

/** One filesystem's detector: null when the bytes are not that filesystem. */
export type Prober = (reader: ProbeReader) => Promise<ProbeResult | null>;
