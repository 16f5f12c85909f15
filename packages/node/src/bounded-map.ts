/**
 * A Map that keeps at most `max` keys, for per-user tables fed by traffic: setting a key makes it the newest, and
 * the oldest goes once the map is full, so no amount of users can grow it past its bound.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > this.max) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return this;
  }
}
