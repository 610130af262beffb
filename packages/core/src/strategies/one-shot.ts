import type { Candidate, Scored } from '../evaluation.ts';
import type { SearchSpace } from '../search-space.ts';
import { BaseStrategy } from './base.ts';

/** ShortGPT: one-shot removal of the units with the lowest block influence (1 − cosine of input and output). */
export class ShortGptStrategy extends BaseStrategy {
  readonly name = 'shortgpt';
  private asked = false;

  constructor(
    space: SearchSpace,
    private readonly influence: readonly number[],
  ) {
    super(space, 0);
  }

  ask(): Candidate[] {
    if (this.asked) return [];
    this.asked = true;
    return this.propose([this.space.lowest(this.influence)], 1);
  }

  protected receive(_results: readonly Scored[]): void {}

  protected fields(): Record<string, unknown> {
    return { asked: this.asked };
  }

  protected restoreFields(f: Record<string, unknown>): void {
    this.asked = f.asked as boolean;
  }
}
