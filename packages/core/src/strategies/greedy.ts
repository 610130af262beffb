import type { Best, Candidate, Scored } from '../evaluation.ts';
import type { SearchSpace } from '../search-space.ts';
import { BaseStrategy, byFitness } from './base.ts';

/**
 * Greedy removal, one unit at a time, of the unit whose removal hurts least: SLEB over whole layers,
 * BlockPruner over attention / MLP sub-blocks. Step j proposes the masks with j + 1 units pruned; the last
 * step's masks meet the target.
 */
export class GreedyStrategy extends BaseStrategy {
  /** The mask greedy removal has reached, and its fitness; none before the first step. */
  private current: Best | undefined;
  private step = 0;

  constructor(
    readonly name: 'sleb' | 'blockpruner',
    space: SearchSpace,
  ) {
    super(space, 0);
  }

  override population(): Best[] {
    return this.current ? [this.current] : [];
  }

  /** Units pruned by the masks the current step proposes. */
  get stepTarget(): number {
    return this.step + 1;
  }

  ask(): Candidate[] {
    if (this.step >= this.space.pruned) return [];
    const from = this.current?.mask ?? '1'.repeat(this.space.size);
    return this.propose(this.space.removals(from), 1);
  }

  protected receive(results: readonly Scored[]): void {
    const { mask, fitness } = [...results].sort(byFitness)[0]!;
    this.current = { mask, fitness };
    this.step++;
  }

  protected fields(): Record<string, unknown> {
    return { current: this.current ?? null, step: this.step };
  }

  protected restoreFields(f: Record<string, unknown>): void {
    this.current = (f.current as Best | null) ?? undefined;
    this.step = f.step as number;
  }
}
