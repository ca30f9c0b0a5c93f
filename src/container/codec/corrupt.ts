import { CorruptImageError, PlatterError } from "../../errors.js";

/** Any decoder failure (a library's Error, a RangeError) as one CorruptImageError naming the codec. */
export function corruptBlock(codec: string, err: unknown): PlatterError {
  if (err instanceof PlatterError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new CorruptImageError(`corrupt ${codec} block: ${why}`, { cause: err });
}

export function tooLarge(codec: string, maxSize: number): CorruptImageError {
  return new CorruptImageError(`corrupt ${codec} block: it expands to more than ${maxSize} bytes`);
}
