/**
 * Several digests fed by one pass over the data, so hashing never costs a
 * second read of the source.
 */
import { createHash, getHashes, type Hash } from "node:crypto";
import { UsageError } from "../errors.js";
import { zeroChunks } from "../io/zeros.js";

export const HASH_ALGORITHMS = ["md5", "sha1", "sha256", "sha512"] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** "sha256,md5" -> ["sha256", "md5"]; unknown names are a usage error. */
export function parseHashList(text: string): HashAlgorithm[] {
  const names = text
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError("--hash needs at least one algorithm (md5, sha1, sha256, sha512)");
  const available = new Set(getHashes());
  for (const n of names) {
    if (!(HASH_ALGORITHMS as readonly string[]).includes(n) || !available.has(n)) {
      throw new UsageError(`unknown hash '${n}' (choose from ${HASH_ALGORITHMS.join(", ")})`);
    }
  }
  return [...new Set(names)] as HashAlgorithm[];
}

export class MultiHasher {
  private readonly hashes: Array<[HashAlgorithm, Hash]>;
  /** Bytes fed so far: a hash is only meaningful over a contiguous stream. */
  position = 0;

  constructor(readonly algorithms: HashAlgorithm[]) {
    this.hashes = algorithms.map((a) => [a, createHash(a)]);
  }

  update(data: Buffer): void {
    for (const [, h] of this.hashes) h.update(data);
    this.position += data.length;
  }

  /** `length` zero bytes (a hole), without materialising them. */
  updateZeros(length: number): void {
    for (const chunk of zeroChunks(length)) this.update(chunk);
  }

  /** Hex digests by algorithm name. */
  digest(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, h] of this.hashes) out[name] = h.digest("hex");
    return out;
  }
}

/**
 * Checksum lines that coreutils can check (`sha256sum -c`): the plain
 * "<hex>  <file>" form for one algorithm, the tagged "SHA256 (<file>) = <hex>"
 * form (what `sha256sum --tag` writes) when there are several.
 */
export function formatHashLines(digests: Record<string, string>, fileName: string): string {
  const entries = Object.entries(digests);
  if (entries.length === 1) return `${entries[0][1]}  ${fileName}\n`;
  return entries.map(([name, hex]) => `${name.toUpperCase()} (${fileName}) = ${hex}\n`).join("");
}
