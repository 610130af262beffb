import type { Candidate, EvaluationResult, Evaluator } from '../src/index.ts';
import { Rng, SearchSpace } from '../src/index.ts';

/**
 * A landscape with a known optimum: each pruned unit costs something, and pairs of units interact. Trap pairs
 * are dear one at a time but cheap together, which is what fools greedy one-at-a-time removal. Low fidelity
 * adds a small deterministic error, as a subset of windows would.
 */
export class SyntheticLandscape implements Evaluator {
  readonly cost: number[];
  readonly pair: number[][];
  readonly log: Candidate[] = [];

  constructor(
    readonly space: SearchSpace,
    seed: number,
    traps: [number, number][] = [],
  ) {
    const rng = Rng.seeded(seed);
    const U = space.size;
    this.cost = Array.from({ length: U }, () => 1 + 2 * rng.float());
    this.pair = Array.from({ length: U }, () => new Array<number>(U).fill(0));
    for (let i = 0; i < U; i++)
      for (let j = i + 1; j < U; j++) {
        const w = 0.2 * (rng.float() - 0.5);
        this.pair[i]![j] = w;
        this.pair[j]![i] = w;
      }
    for (const [a, b] of traps) {
      this.cost[a] = 4;
      this.cost[b] = 4;
      this.pair[a]![b] = this.pair[b]![a] = -7.5;
    }
  }

  fitness(mask: string): number {
    const pruned = this.space.prunedUnits(mask);
    let f = 0;
    for (const [x, i] of pruned.entries()) {
      f += this.cost[i]!;
      for (const j of pruned.slice(x + 1)) f += this.pair[i]![j]!;
    }
    return 2 + f / 10;
  }

  async evaluate(candidates: readonly Candidate[]): Promise<EvaluationResult[]> {
    this.log.push(...candidates);
    return candidates.map(({ mask, fidelity }) => {
      let h = 0;
      for (const ch of mask) h = (h * 31 + ch.charCodeAt(0)) % 1000003;
      const noise = fidelity < 1 ? 0.004 * ((h % 1000) / 1000 - 0.5) : 0;
      const count = Math.round(1000 * fidelity);
      return { nllSum: (this.fitness(mask) + noise) * count, count };
    });
  }

  /** The best mask of the space (balance kept) and its fitness, by brute force. */
  optimum(): { mask: string; fitness: number } {
    let best = { mask: '', fitness: Number.POSITIVE_INFINITY };
    const n = this.space.prunable.length;
    const k = this.space.pruned;
    const combo = Array.from({ length: k }, (_, i) => i);
    for (;;) {
      const mask = this.space.maskOf(combo.map((i) => this.space.prunable[i]!));
      const fitness = this.fitness(mask);
      if (fitness < best.fitness && this.space.accepts(mask)) best = { mask, fitness };
      let i = k - 1;
      while (i >= 0 && combo[i] === n - k + i) i--;
      if (i < 0) return best;
      combo[i]!++;
      for (let j = i + 1; j < k; j++) combo[j] = combo[j - 1]! + 1;
    }
  }
}

export function layerSpace(U: number, pruned: number, protectedUnits: number[] = []): SearchSpace {
  return new SearchSpace({
    units: Array.from({ length: U }, (_, i) => ({ id: `layer${i}`, params: 100 })),
    target: { units: pruned },
    protected: protectedUnits,
  });
}
