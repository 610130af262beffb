import { type Candidate, type Evaluator, fitnessOf, type Objective, type Scored } from './evaluation.ts';
import type { FitnessCache } from './fitness-cache.ts';
import type { Strategy, StrategyState } from './strategy.ts';

/** One generation (one ask/tell round) of a search. */
export interface GenerationRecord {
  generation: number;
  /** Best complete full-fidelity mask so far. */
  best: { mask: string; fitness: number } | null;
  /** Mean fitness of the population after this generation, or of its candidates when there is none. */
  mean: number;
  candidates: number;
  /** Cumulative: candidates measured, of them served from the cache, and cost in full-fidelity equivalents. */
  evaluations: number;
  cacheHits: number;
  spent: number;
  /** Masks of the strategy's population after this generation. */
  population: string[];
}

/** What a search needs to continue: plain JSON, written after every generation. */
export interface SearchCheckpoint {
  strategy: StrategyState;
  history: GenerationRecord[];
}

export interface RunSearchOptions {
  strategy: Strategy;
  evaluator: Evaluator;
  objective?: Objective;
  cache?: FitnessCache;
  /** Called with the state after every generation; awaited before the next one starts. */
  checkpoint?: (checkpoint: SearchCheckpoint) => void | Promise<void>;
  onProgress?: (record: GenerationRecord) => void;
  signal?: AbortSignal;
  /** Continue from a checkpoint (the strategy is restored from it). */
  resume?: SearchCheckpoint;
}

export interface SearchOutcome {
  best: { mask: string; fitness: number } | null;
  history: GenerationRecord[];
  /** True when the signal stopped the search before the strategy finished; the last checkpoint continues it. */
  stopped: boolean;
}

/**
 * The one search loop, local or distributed: ask → look up the cache → evaluate the rest → tell →
 * checkpoint → progress. Stopping between generations loses nothing: the checkpoint holds the strategy (RNG
 * included) and the history, and resuming from it gives what an uninterrupted run gives.
 */
export async function runSearch(options: RunSearchOptions): Promise<SearchOutcome> {
  const { strategy, evaluator, cache, signal } = options;
  const objective = options.objective ?? 'mean';
  const history = options.resume ? [...options.resume.history] : [];
  if (options.resume) strategy.restore(options.resume.strategy);
  let evaluations = history.at(-1)?.evaluations ?? 0;
  let cacheHits = history.at(-1)?.cacheHits ?? 0;

  for (;;) {
    if (signal?.aborted) return { best: strategy.best() ?? null, history, stopped: true };
    const candidates = strategy.ask();
    if (candidates.length === 0) break;
    const cached = cache ? await cache.get(candidates) : candidates.map(() => undefined);
    const missing: Candidate[] = candidates.filter((_, i) => !cached[i]);
    let measured: Awaited<ReturnType<Evaluator['evaluate']>> = [];
    try {
      if (missing.length > 0) measured = await evaluator.evaluate(missing, signal);
    } catch (err) {
      // Stopped mid-generation: the strategy has asked but not been told; the last checkpoint is the resume point.
      if (signal?.aborted) return { best: history.at(-1)?.best ?? null, history, stopped: true };
      throw err;
    }
    if (cache && missing.length > 0)
      await cache.set(missing.map((candidate, i) => ({ candidate, result: measured[i]! })));
    let next = 0;
    const results = candidates.map((_, i) => cached[i] ?? measured[next++]!);
    const scored: Scored[] = candidates.map((c, i) => ({ ...c, fitness: fitnessOf(results[i]!, objective) }));
    strategy.tell(scored);

    evaluations += candidates.length;
    cacheHits += candidates.length - missing.length;
    const population = strategy.population();
    const averaged = population.length > 0 ? population : scored;
    const record: GenerationRecord = {
      generation: history.length + 1,
      best: strategy.best() ?? null,
      mean: averaged.reduce((s, r) => s + r.fitness, 0) / averaged.length,
      candidates: candidates.length,
      evaluations,
      cacheHits,
      spent: strategy.spent,
      population: population.map((p) => p.mask),
    };
    history.push(record);
    await options.checkpoint?.({ strategy: strategy.state(), history });
    options.onProgress?.(record);
  }
  return { best: strategy.best() ?? null, history, stopped: false };
}
