/**
 * Values made once per key, shared by concurrent callers while being made; a failed make is forgotten so the next
 * call tries again. With `limit`, the least recently used entries go first, handed to `onEvict`.
 */
export class PromiseCache<T> {
  private readonly entries = new Map<string, Promise<T>>();

  constructor(
    private readonly limit = Number.POSITIVE_INFINITY,
    private readonly onEvict: (key: string, value: Promise<T>) => void = () => {},
  ) {}

  get(key: string, make: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key);
    else {
      entry = make();
      entry.catch(() => this.entries.delete(key));
    }
    this.entries.set(key, entry);
    while (this.entries.size > this.limit) {
      const [oldest, value] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.onEvict(oldest, value);
    }
    return entry;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }
}
