/**
 * The mapfile side of a capture: the map to resume from (or a fresh one),
 * the heading that records where DEST starts, and atomic saves whose status
 * line tells ddrescue where the rescue is.
 */
import { CorruptImageError, UsageError } from "../errors.js";
import { VERSION } from "../version.js";
import { PHASE_STATUS, type Phase } from "./copier.js";
import { encodeMapfile, type Mapfile } from "./mapfile.js";
import { loadMapfile, mapTimestamp, saveMapfile } from "./map-store.js";
import { RescueMap } from "./rescue-map.js";
import type { CaptureDomain } from "./domain.js";

/** Where the passes are, for the status line: the copier, or nothing yet. */
export interface RescueState {
  phase: Phase;
  pass: number;
  position: number;
}

/** The heading line that records where DEST starts, so a resume with another --skip is refused. */
const ORIGIN_COMMENT = "DEST offset 0 is SOURCE offset ";

export class CaptureMap {
  /** --used-only: what is saved outside the domain (see domain.ts). */
  private domain: CaptureDomain | undefined;

  private constructor(
    readonly map: RescueMap,
    /** The mapfile on disk; undefined when the capture keeps none. */
    readonly path: string | undefined,
    /** What the mapfile said when the capture started, if it existed. */
    readonly loaded: Mapfile | undefined,
    private readonly heading: string[],
    private readonly start: number,
  ) {}

  /**
   * The map at `path` fitted to a source of `size` bytes, or a fresh one.
   * A map that says another --skip produced DEST is refused.
   */
  static async open(
    path: string | undefined,
    size: number,
    start: number,
    heading: { comments: string[]; startedAt: number; warn?: (message: string) => void },
  ): Promise<CaptureMap> {
    const loaded = path ? await loadMapfile(path) : undefined;
    const map = loaded ? fitMap(loaded, size, path as string) : new RescueMap(size);
    const comments = [
      `Mapfile. Created by platter ${VERSION} (GNU ddrescue mapfile format)`,
      ...heading.comments,
      `${ORIGIN_COMMENT}${start}`,
      `Start time:   ${mapTimestamp(new Date(heading.startedAt))}`,
    ];
    const captureMap = new CaptureMap(map, path, loaded, comments, start);
    if (captureMap.resumed) checkOrigin(loaded as Mapfile, start, path as string, heading.warn);
    return captureMap;
  }

  /** The mapfile existed and says some of it was tried: this run continues it. */
  get resumed(): boolean {
    return this.loaded !== undefined && this.loaded.blocks.some((b) => b.status !== "?");
  }

  /**
   * Save atomically with ddrescue's status line and message ("Copying non-tried blocks...", "Finished");
   * `map`: what DEST holds for sure, when that is less than the rescue knows (a compressed DEST's frame still filling).
   */
  async save(message: string, state: RescueState | undefined, map: RescueMap = this.map): Promise<void> {
    if (!this.path) return;
    const file: Mapfile = {
      comments: [...this.heading, `Current time: ${mapTimestamp(new Date())}`, message],
      currentPos: state?.position ?? this.loaded?.currentPos ?? this.start,
      currentStatus: state ? PHASE_STATUS[state.phase] : (this.loaded?.currentStatus ?? "?"),
      currentPass: state?.pass ?? this.loaded?.currentPass ?? 1,
      blocks: this.domain ? this.domain.blocks(map) : map.toBlocks(),
    };
    await saveMapfile(this.path, encodeMapfile(file));
  }

  /** Read only `domain` in this run; the map keeps what it said outside it. */
  restrictTo(domain: CaptureDomain): void {
    domain.adopt(this.map);
    this.domain = domain;
  }

  /** The same map cut to `size` bytes: a stream's, once its end is known. */
  fitTo(size: number): CaptureMap {
    return new CaptureMap(RescueMap.fromBlocks(this.map.toBlocks(), size), this.path, this.loaded, this.heading, this.start);
  }
}

/** ddrescue's status message for the mapfile heading. */
export function phaseMessage(state: RescueState): string {
  switch (state.phase) {
    case "copying":
      return `Copying non-tried blocks... Pass ${state.pass} (${state.pass === 2 ? "backwards" : "forwards"})`;
    case "trimming":
      return "Trimming failed blocks... (forwards)";
    case "scraping":
      return "Scraping failed blocks... (forwards)";
    case "retrying":
      return `Retrying bad sectors... Retry ${state.pass} (${state.pass % 2 === 1 ? "forwards" : "backwards"})`;
    case "finished":
      return "Finished";
  }
}

function checkOrigin(loaded: Mapfile, start: number, mapPath: string, warn: ((m: string) => void) | undefined): void {
  const line = loaded.comments.find((c) => c.startsWith(ORIGIN_COMMENT));
  if (line === undefined) {
    // ddrescue writes DEST at the SOURCE offset (its -o defaults to -i).
    if (start !== 0) warn?.(`${mapPath} does not say where DEST starts; with --skip ${start}, DEST offset 0 is SOURCE offset ${start}`);
    return;
  }
  const recorded = Number(line.slice(ORIGIN_COMMENT.length));
  if (recorded !== start) {
    throw new UsageError(`${mapPath} belongs to a capture with --skip ${recorded}; resume it with the same --skip (this run: ${start})`);
  }
}

function fitMap(loaded: Mapfile, size: number, path: string): RescueMap {
  try {
    return RescueMap.fromBlocks(loaded.blocks, size);
  } catch (err) {
    if (err instanceof CorruptImageError) throw new CorruptImageError(`${path}: ${err.message}`);
    throw err;
  }
}
