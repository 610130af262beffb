import type { Best, Candidate, Scored } from '../evaluation.ts';
import type { SearchSpace } from '../search-space.ts';
import { BaseStrategy, byFitness, EVOLUTION_DEFAULTS, type EvolutionOptions, swapCount } from './base.ts';

export interface EvopressOptions extends EvolutionOptions {
  /** Offspring per generation, all mutants of the one parent (default 32). */
  lambda: number;
  /** Offspring kept after the screening stage and re-scored on all windows (default 2). */
  survivors: number;
}

export const EVOPRESS_DEFAULTS = {
  lambda: 32,
  survivors: 2,
  ...EVOLUTION_DEFAULTS,
} satisfies EvopressOptions;

type Phase = 'init' | 'screen' | 'select' | 'done';

/**
 * EvoPress-style (1+λ) search: λ swap mutants of the current mask, screened on few windows; the best
 * `survivors` re-scored on all; the best of them replaces the parent when it is better.
 */
export class EvopressStrategy extends BaseStrategy {
  readonly name = 'evopress';
  private phase: Phase = 'init';
  private parent: Scored | undefined;
  private screened: Scored[] = [];
  private stall = 0;

  constructor(
    space: SearchSpace,
    readonly options: EvopressOptions,
  ) {
    super(space, options.seed);
  }

  override population(): Best[] {
    return this.parent ? [{ mask: this.parent.mask, fitness: this.parent.fitness }] : [];
  }

  ask(): Candidate[] {
    const { lambda, survivors, lowFidelity, budget, seedMasks } = this.options;
    if (this.phase === 'init') {
      const start = seedMasks?.[0] ?? this.space.randomMask(this.rng);
      return this.propose([start], 1);
    }
    if (this.phase === 'select')
      return this.propose(
        [...this.screened]
          .sort(byFitness)
          .slice(0, survivors)
          .map((s) => s.mask),
        1,
      );
    if (this.phase === 'screen' && this.spent + lambda * lowFidelity + survivors <= budget) {
      const children = new Set<string>();
      for (let tries = 0; children.size < lambda && tries < lambda * 50; tries++) {
        const child = this.space.mutate(this.parent!.mask, swapCount(this.rng), this.rng);
        if (!this.wasProposed(child, lowFidelity) && !this.wasProposed(child, 1)) children.add(child);
      }
      if (children.size > 0) return this.propose([...children], lowFidelity);
    }
    this.phase = 'done';
    return [];
  }

  protected receive(results: readonly Scored[]): void {
    if (this.phase === 'init') {
      this.parent = results[0];
      this.phase = 'screen';
    } else if (this.phase === 'screen') {
      this.screened = [...results];
      this.phase = 'select';
    } else {
      const challenger = [...results].sort(byFitness)[0]!;
      if (challenger.fitness < this.parent!.fitness) {
        this.parent = challenger;
        this.stall = 0;
      } else this.stall++;
      this.screened = [];
      this.phase = this.stall >= this.options.patience ? 'done' : 'screen';
    }
  }

  protected fields(): Record<string, unknown> {
    return { phase: this.phase, parent: this.parent ?? null, screened: this.screened, stall: this.stall };
  }

  protected restoreFields(f: Record<string, unknown>): void {
    this.phase = f.phase as Phase;
    this.parent = (f.parent as Scored | null) ?? undefined;
    this.screened = f.screened as Scored[];
    this.stall = f.stall as number;
  }
}
