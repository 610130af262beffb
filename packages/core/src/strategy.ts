import type { Best, Candidate, Scored } from './evaluation.ts';

/** Everything a strategy needs to continue where it stopped, RNG included; plain JSON. */
export interface StrategyState {
  name: string;
  [key: string]: unknown;
}

/**
 * A search strategy in the ask-and-tell style: `ask()` proposes candidates, `tell()` takes their fitness in the
 * same order. An empty `ask()` means the search is over. `state()` / `restore()` serialise it between the two.
 */
export interface Strategy {
  readonly name: string;
  ask(): Candidate[];
  tell(results: readonly Scored[]): void;
  /** Best complete mask measured on all windows so far. */
  best(): Best | undefined;
  /** The current population with its full-fidelity fitness (empty when the strategy keeps none). */
  population(): Best[];
  /** Evaluation cost spent so far, in full-fidelity equivalents (a candidate at fidelity f costs f). */
  readonly spent: number;
  state(): StrategyState;
  restore(state: StrategyState): void;
}

/** The best of a set of complete full-fidelity results, or the previous best if none beats it. */
export function better(
  best: Best | undefined,
  results: readonly Scored[],
  complete: (mask: string) => boolean,
): Best | undefined {
  let out = best;
  for (const r of results)
    if (r.fidelity === 1 && complete(r.mask) && (!out || r.fitness < out.fitness))
      out = { mask: r.mask, fitness: r.fitness };
  return out;
}
