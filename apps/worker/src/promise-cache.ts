/**
 * Values made once per key, shared by concurrent callers while being made; a failed make is forgotten so the next
 * call tries again. With `limit`, the oldest entries go first.
 */
export class PromiseCache<T> {
  private readonly entries = new Map<string, Promise<T>>();

  constructor(private readonly limit = Number.POSITIVE_INFINITY) {}

  get(key: string, make: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = make();
      entry.catch(() => this.entries.delete(key));
      this.entries.set(key, entry);
      if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value!);
    }
    return entry;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }
}
