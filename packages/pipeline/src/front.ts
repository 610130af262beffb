import { join } from 'node:path';
import type { SearchSpace } from '@evop/core';
import type { FrontPoint } from './report.ts';
import { type RunSearchesOptions, type SearchResult, searchOnce } from './searches.ts';

/** Where a front point's model and mask go, relative to the run's folder: `front/6-units`. */
export const frontDir = (units: number) => join('front', `${units}-units`);

/** The checkpoint and progress name of a front point's search: `evop@6`. */
export const frontSearchName = (strategy: string, pruned: number) => `${strategy}@${pruned}`;

/**
 * The front's searches, one per target in `spaces` (in `planSearch`'s order), after the spec's own search `main`:
 * each runs the spec's strategy on the same evaluator and fitness cache, seeded with the best masks of the nearest
 * points already searched below and above it, moved to its unit count by block influence (`SearchSpace.fit`). A
 * neighbour's best mask, one unit more or less, is most of the way to this point's best: the search starts there
 * rather than from random masks. Returned by unit count, fewest first.
 */
export async function runFront(
  options: Omit<RunSearchesOptions, 'space'> & { spaces: readonly SearchSpace[]; main: SearchResult },
): Promise<SearchResult[]> {
  const { spec, spaces, main } = options;
  const done: SearchResult[] = [main];
  for (const space of spaces) {
    const below = done.filter((p) => p.pruned < space.pruned).sort((a, b) => b.pruned - a.pruned)[0];
    const above = done.filter((p) => p.pruned > space.pruned).sort((a, b) => a.pruned - b.pruned)[0];
    const seedMasks = [
      ...new Set([below, above].flatMap((p) => (p ? [space.fit(p.best.mask, options.influence)] : []))),
    ];
    done.push(
      await searchOnce(options, {
        name: spec.strategy,
        key: frontSearchName(spec.strategy, space.pruned),
        space,
        seedMasks,
      }),
    );
  }
  return done.slice(1).sort((a, b) => a.pruned - b.pruned);
}

/**
 * Which points are Pareto-optimal: no other point has at least their prefill speedup and at most their held-out
 * perplexity, one of them strictly. Where a point has no speedup measured (its latency failed), units pruned
 * stand in for speed for every point, so that points are compared on one axis.
 */
export function paretoOptimal(
  points: readonly Pick<FrontPoint, 'units' | 'perplexity' | 'latency'>[],
): boolean[] {
  const measured = points.every((p) => p.latency);
  const speed = points.map((p) => (measured ? p.latency!.prefill.ratio.median : p.units));
  return points.map(
    (p, i) =>
      !points.some(
        (q, j) =>
          j !== i &&
          speed[j]! >= speed[i]! &&
          q.perplexity <= p.perplexity &&
          (speed[j]! > speed[i]! || q.perplexity < p.perplexity),
      ),
  );
}
