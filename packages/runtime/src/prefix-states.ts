import type { WireTensor } from './wire-tensor.ts';

/** What the segments done so far hand on: the stream where the next one starts, and values computed on the way. */
export type State = Record<string, WireTensor>;

/**
 * Hidden states of mask prefixes, kept across batches within a byte budget, least recently used dropped first.
 * A search's next generation shares long prefixes with the masks it has just measured (its parents), so their
 * states, once computed, spare it those segments. Keys name the windows (content and run) and the prefix's bits;
 * states are never changed once stored (runs are fed copies).
 */
export class PrefixStates {
  private readonly states = new Map<string, { state: State; bytes: number }>();
  /** Keys not to drop, with how many times each is pinned. */
  private readonly pinned = new Map<string, number>();
  private held = 0;

  constructor(private readonly budget: number) {}

  get(key: string): State | undefined {
    const entry = this.states.get(key);
    if (!entry) return undefined;
    // Most recently used last.
    this.states.delete(key);
    this.states.set(key, entry);
    return entry.state;
  }

  /**
   * Keeps `state`, dropping the least recently used unpinned states until it fits; not kept where the pinned ones
   * leave no room.
   */
  set(key: string, state: State): void {
    if (this.states.has(key)) return;
    const bytes = Object.values(state).reduce((n, t) => n + t.data.byteLength, 0);
    for (const [oldKey, old] of this.states) {
      if (this.held + bytes <= this.budget) break;
      if (this.pinned.has(oldKey)) continue;
      this.states.delete(oldKey);
      this.held -= old.bytes;
    }
    if (this.held + bytes > this.budget) return;
    this.states.set(key, { state, bytes });
    this.held += bytes;
  }

  /**
   * Keeps the state of `key`, now or once set, until unpinned: a walk pins the prefixes on its path, whose later
   * children still need them.
   */
  pin(key: string): void {
    this.pinned.set(key, (this.pinned.get(key) ?? 0) + 1);
  }

  unpin(key: string): void {
    const count = this.pinned.get(key)!;
    if (count > 1) this.pinned.set(key, count - 1);
    else this.pinned.delete(key);
  }

  clear(): void {
    this.states.clear();
    this.held = 0;
  }
}
