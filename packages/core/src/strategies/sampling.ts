import type { Candidate, Scored } from '../evaluation.ts';
import type { SearchSpace } from '../search-space.ts';
import { BaseStrategy } from './base.ts';

/** Candidates per ask for the strategies that have no generations of their own, so progress is reported. */
const CHUNK = 32;

/** The best of `budget` distinct random masks. */
export class RandomStrategy extends BaseStrategy {
  readonly name = 'random';

  constructor(
    space: SearchSpace,
    private readonly budget: number,
    seed: number,
  ) {
    super(space, seed);
  }

  ask(): Candidate[] {
    const wanted = Math.min(
      CHUNK,
      this.budget - this.proposed.size,
      this.space.maskCount - this.proposed.size,
    );
    const masks = new Set<string>();
    for (let tries = 0; masks.size < wanted && tries < wanted * 100; tries++) {
      const mask = this.space.randomMask(this.rng);
      if (!this.wasProposed(mask, 1)) masks.add(mask);
    }
    return this.propose([...masks], 1);
  }

  protected receive(_results: readonly Scored[]): void {}

  protected fields(): Record<string, unknown> {
    return {};
  }

  protected restoreFields(): void {}
}

/** Every mask that meets the target (and balance), in lexicographic order of the pruned units. */
export class ExhaustiveStrategy extends BaseStrategy {
  readonly name = 'exhaustive';
  /** Indices into `space.prunable` of the next combination to propose; null when all are done. */
  private next: number[] | null;

  constructor(space: SearchSpace) {
    super(space, 0);
    this.next = Array.from({ length: space.pruned }, (_, i) => i);
  }

  ask(): Candidate[] {
    const masks: string[] = [];
    const n = this.space.prunable.length;
    const k = this.space.pruned;
    while (this.next && masks.length < CHUNK) {
      const mask = this.space.maskOf(this.next.map((i) => this.space.prunable[i]!));
      // With balance, only the combinations that take each group's share.
      if (this.space.accepts(mask)) masks.push(mask);
      // Advance to the next k-combination of n.
      let i = k - 1;
      while (i >= 0 && this.next[i] === n - k + i) i--;
      if (i < 0) this.next = null;
      else {
        this.next[i]!++;
        for (let j = i + 1; j < k; j++) this.next[j] = this.next[j - 1]! + 1;
      }
    }
    return this.propose(masks, 1);
  }

  protected receive(_results: readonly Scored[]): void {}

  protected fields(): Record<string, unknown> {
    return { next: this.next };
  }

  protected restoreFields(f: Record<string, unknown>): void {
    this.next = f.next as number[] | null;
  }
}
