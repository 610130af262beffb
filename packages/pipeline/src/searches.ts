import {
  createStrategy,
  type Evaluator,
  type FitnessCache,
  type GenerationRecord,
  runSearch,
  type SearchCheckpoint,
  type SearchSpace,
  type StrategyName,
} from '@evop/core';
import { type SearchSpec, strategiesOf } from './search-spec.ts';

/** The search stopped on a signal; its checkpoints continue it. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

/**
 * Where each search's checkpoint is kept: files for `evop prune`, Generation rows for the service. A search is
 * named by its strategy, or `strategy@units` for a point of the front (`searchName`).
 */
export interface CheckpointStore {
  load(search: string): Promise<SearchCheckpoint | undefined>;
  save(search: string, checkpoint: SearchCheckpoint): Promise<void>;
}

/** Who watches the searches: a terminal bar, or the service's progress events. */
export interface SearchProgress {
  start(search: string, total: number): void;
  generation(search: string, record: GenerationRecord, total: number): void;
  stop(): void;
}

export interface SearchResult {
  name: StrategyName;
  /** Units its masks prune. */
  pruned: number;
  best: { mask: string; fitness: number };
  history: GenerationRecord[];
  /** Wall time of this run of the search (a resumed search counts from its resumption). */
  seconds: number;
}

/** What the finalize stage needs of a search. */
export interface SearchSummary {
  name: string;
  best: { mask: string; fitness: number };
  evaluations: number;
}

export const summaryOf = (s: SearchResult): SearchSummary => ({
  name: s.name,
  best: s.best,
  evaluations: s.history.at(-1)?.evaluations ?? 0,
});

export interface RunSearchesOptions {
  spec: SearchSpec;
  space: SearchSpace;
  evaluator: Evaluator;
  /** Per-unit block influence, 1 − cosine of each unit's input and output on the calibration windows. */
  influence: readonly number[];
  /** The validation windows' fidelity: the search windows as a multiple of the calibration windows. */
  validation: number;
  /** Shared by the strategies, so that a mask two of them try is measured once. */
  cache: FitnessCache;
  checkpoints: CheckpointStore;
  progress: SearchProgress;
  signal: AbortSignal;
}

/** Evaluations a strategy is expected to spend: the greedy ones need no budget, they take what they take. */
function expectedCost(name: StrategyName, space: SearchSpace, budget: number): number {
  return name === 'sleb' || name === 'blockpruner' ? space.prunable.length * space.pruned : budget;
}

/**
 * The spec's search, then its peers, on one evaluator, each continued from its checkpoint when there is one.
 * Throws Interrupted when the signal stops a search (its last checkpoint is kept).
 */
export async function runSearches(options: RunSearchesOptions): Promise<SearchResult[]> {
  const results: SearchResult[] = [];
  for (const name of strategiesOf(options.spec))
    results.push(await searchOnce(options, { name, key: name, space: options.space }));
  return results;
}

/** One search of a strategy on a space, under its checkpoint key, seeded with `seedMasks` where given. */
export async function searchOnce(
  options: Omit<RunSearchesOptions, 'space'>,
  search: { name: StrategyName; key: string; space: SearchSpace; seedMasks?: string[] },
): Promise<SearchResult> {
  const { spec, evaluator, cache, checkpoints, progress, signal } = options;
  const { name, key, space } = search;
  const strategy = createStrategy(name, space, {
    seed: spec.seed,
    budget: spec.budget,
    influence: options.influence,
    validation: options.validation,
    ...(search.seedMasks ? { seedMasks: search.seedMasks } : {}),
  });
  const started = Date.now();
  const resume = await checkpoints.load(key);
  const total = expectedCost(name, space, spec.budget);
  progress.start(key, total);
  const outcome = await runSearch({
    strategy,
    evaluator,
    objective: spec.objective,
    cache,
    signal,
    ...(resume ? { resume } : {}),
    checkpoint: (c) => checkpoints.save(key, c),
    onProgress: (r) => progress.generation(key, r, total),
  });
  progress.stop();
  if (outcome.stopped) throw new Interrupted(`stopped during the ${key} search`);
  return {
    name,
    pruned: space.pruned,
    best: outcome.best!,
    history: outcome.history,
    seconds: (Date.now() - started) / 1000,
  };
}
