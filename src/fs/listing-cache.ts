import { LruCache } from "../util/lru.js";

/**
 * The listings a reader keeps for lookup() and repeated list() calls: a few
 * dozen small directories (path resolution revisits them), never a huge one.
 * A listing is kept only when it was read to its end and stayed under
 * `maxEntries`; the entries of a big directory pass through and are gone.
 */
export class ListingCache<K, E> {
  private readonly listings: LruCache<K, E[]>;

  constructor(
    capacity = 64,
    private readonly maxEntries = 4096,
  ) {
    this.listings = new LruCache(capacity);
  }

  get(key: K): E[] | undefined {
    return this.listings.get(key);
  }

  /**
   * The kept listing of `key`, or else `entries` as they come, kept if they
   * turn out few. `entries` is a generator not yet started: on a hit it is never run.
   */
  async *list(key: K, entries: AsyncIterable<E>): AsyncGenerator<E> {
    const cached = this.listings.get(key);
    if (cached) {
      yield* cached;
      return;
    }
    let kept: E[] | undefined = [];
    for await (const entry of entries) {
      if (kept && kept.push(entry) > this.maxEntries) kept = undefined;
      yield entry;
    }
    if (kept) this.listings.set(key, kept);
  }
}
