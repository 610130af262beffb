import type { Best, Candidate, Scored } from '../evaluation.ts';
import { Rng } from '../rng.ts';
import type { SearchSpace } from '../search-space.ts';
import { better, type Strategy, type StrategyState } from '../strategy.ts';

/**
 * What every strategy keeps: its space, RNG, cost spent, best result and the masks it has proposed (so that none
 * is measured twice at the same fidelity). Subclasses add their own fields to `fields()` / `restoreFields()`.
 */
export abstract class BaseStrategy implements Strategy {
  abstract readonly name: string;
  protected rng: Rng;
  private spentCost = 0;
  private bestResult: Best | undefined;
  protected readonly proposed = new Set<string>();

  constructor(
    protected readonly space: SearchSpace,
    seed: number,
  ) {
    this.rng = Rng.seeded(seed);
  }

  abstract ask(): Candidate[];
  protected abstract receive(results: readonly Scored[]): void;
  protected abstract fields(): Record<string, unknown>;
  protected abstract restoreFields(fields: Record<string, unknown>): void;

  tell(results: readonly Scored[]): void {
    for (const r of results) this.spentCost += r.fidelity;
    this.bestResult = better(this.bestResult, results, (mask) => this.space.accepts(mask));
    this.receive(results);
  }

  best(): Best | undefined {
    return this.bestResult;
  }

  /** The search's answer is this mask, not the best on the calibration windows (evop's final choice). */
  protected settle(best: Best): void {
    this.bestResult = best;
  }

  population(): Best[] {
    return [];
  }

  get spent(): number {
    return this.spentCost;
  }

  /** Marks masks as proposed at a fidelity, returning the candidates. */
  protected propose(masks: readonly string[], fidelity: number): Candidate[] {
    for (const mask of masks) this.proposed.add(`${fidelity}/${mask}`);
    return masks.map((mask) => ({ mask, fidelity }));
  }

  protected wasProposed(mask: string, fidelity: number): boolean {
    return this.proposed.has(`${fidelity}/${mask}`);
  }

  state(): StrategyState {
    return {
      name: this.name,
      rng: this.rng.state(),
      spent: this.spentCost,
      best: this.bestResult ?? null,
      proposed: [...this.proposed],
      ...this.fields(),
    };
  }

  restore(state: StrategyState): void {
    if (state.name !== this.name)
      throw new Error(`cannot restore a '${state.name}' state into a '${this.name}' strategy`);
    this.rng = Rng.fromState(state.rng as number[]);
    this.spentCost = state.spent as number;
    this.bestResult = (state.best as Best | null) ?? undefined;
    this.proposed.clear();
    for (const key of state.proposed as string[]) this.proposed.add(key);
    this.restoreFields(state);
  }
}

/** Options both evolutionary strategies take. */
export interface EvolutionOptions {
  /** Fraction of the calibration windows offspring are screened on (default 0.25; 1 turns screening off). */
  lowFidelity: number;
  /** Evaluation budget in full-fidelity equivalents (default 1000). */
  budget: number;
  /** Stop after this many generations without a better mask (default 20). */
  patience: number;
  /**
   * Masks of this space the search starts from (ShortGPT's mask, a neighbouring target's best mask moved to this
   * count): the first is measured first, and evop fills half its first population with their mutations.
   */
  seedMasks?: readonly string[];
  seed: number;
}

export const EVOLUTION_DEFAULTS = {
  lowFidelity: 0.25,
  budget: 1000,
  patience: 20,
  seed: 0,
} satisfies EvolutionOptions;

/** EvoPress's mutation strength: min(U(1,3), U(1,3)) swaps, so one swap is the most likely. */
export function swapCount(rng: Rng): number {
  return Math.min(rng.int(1, 3), rng.int(1, 3));
}

export function byFitness(a: Scored, b: Scored): number {
  return a.fitness - b.fitness;
}
