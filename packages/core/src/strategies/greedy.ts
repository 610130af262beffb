import type { Candidate, Scored } from '../evaluation.ts';
import type { SearchSpace } from '../search-space.ts';
import { BaseStrategy, byFitness } from './base.ts';

/**
 * Greedy removal, one unit at a time, of the unit whose removal hurts least: SLEB over whole layers,
 * BlockPruner over attention / MLP sub-blocks. Step j proposes the masks with j + 1 units pruned; the last
 * step's masks meet the target.
 */
export class GreedyStrategy extends BaseStrategy {
  private current: string;
  private step = 0;

  constructor(
    readonly name: 'sleb' | 'blockpruner',
    space: SearchSpace,
  ) {
    super(space, 0);
    this.current = '1'.repeat(space.size);
  }

  override population(): string[] {
    return [this.current];
  }

  /** Units pruned by the masks the current step proposes. */
  get stepTarget(): number {
    return this.step + 1;
  }

  ask(): Candidate[] {
    if (this.step >= this.space.pruned) return [];
    const masks = this.space.prunable
      .filter((i) => this.current[i] === '1')
      .map((i) => `${this.current.slice(0, i)}0${this.current.slice(i + 1)}`);
    return this.propose(masks, 1);
  }

  protected receive(results: readonly Scored[]): void {
    this.current = [...results].sort(byFitness)[0]!.mask;
    this.step++;
  }

  protected fields(): Record<string, unknown> {
    return { current: this.current, step: this.step };
  }

  protected restoreFields(f: Record<string, unknown>): void {
    this.current = f.current as string;
    this.step = f.step as number;
  }
}
