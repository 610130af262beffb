import type { Evaluator, FitnessCache, SearchSpace } from '@evop/core';
import type { TokenWindows } from '@evop/data';
import type { DecoderLayout, Unit } from '@evop/onnx';
import { assembleReport } from './assemble-report.ts';
import {
  type Calibration,
  type ClusteredWindows,
  calibrate,
  type SearchWindows,
  splitWindows,
  validationFidelity,
} from './calibration.ts';
import type { EvalSet, Finalized } from './finalize.ts';
import { runFront } from './front.ts';
import { PipelineError } from './pipeline-error.ts';
import type { PruneReport } from './report.ts';
import { planSearch } from './search-space.ts';
import type { SearchSpec } from './search-spec.ts';
import {
  type CheckpointStore,
  runSearches,
  type SearchProgress,
  type SearchResult,
  type SearchSummary,
  summaryOf,
} from './searches.ts';

/** A run's calibration as it is kept between its stages: the windows chosen and each unit's influence. */
export interface StoredCalibration {
  calibration: Calibration;
  influence: number[];
}

/** Where a run's state lives: the output folder of `evop prune`, or PostgreSQL and the artifact store. */
export interface PipelineStore {
  loadCalibration(): Promise<StoredCalibration | undefined>;
  saveCalibration(
    stored: StoredCalibration,
    sets: { search: SearchWindows; heldOut: ClusteredWindows },
  ): Promise<void>;
  /** Kept before finalize runs, so that a search is never lost to a later stage: the searches, the front's. */
  saveSearched(searches: readonly SearchResult[], front: readonly SearchResult[]): Promise<void>;
}

/** Where a run's model work executes: in this process, or as tasks on workers. */
export interface PipelineBackend {
  /** Each pool window's pooled hidden state (CCDS). */
  pooledStates(pool: TokenWindows, signal: AbortSignal): Promise<Float32Array>;
  /** The calibration from the pool and its states (`calibrate`, CCDS's k-means); default: on this thread. */
  calibrate?(
    spec: SearchSpec,
    pool: TokenWindows,
    states: Float32Array | undefined,
    hiddenSize: number,
    signal: AbortSignal,
  ): Promise<Calibration>;
  /** Each unit's cosine between its input and output on the calibration windows. */
  unitCosines(calibration: ClusteredWindows, signal: AbortSignal): Promise<number[]>;
  /** The searches' evaluator of the search windows, their fitness cache and their checkpoints. */
  search(
    search: SearchWindows,
  ): Promise<{ evaluator: Evaluator; cache: FitnessCache; checkpoints: CheckpointStore }>;
  /** Export, held-out evaluation, zero-shot tasks and latency (packages/pipeline `finalize`). */
  finalize(stage: FinalizeStage): Promise<Finalized>;
}

/** What finalize is given by the pipeline. */
export interface FinalizeStage {
  searches: SearchSummary[];
  /** The front's other points, by units pruned (empty without a front). */
  front: SearchSummary[];
  heldOut: ClusteredWindows;
  /** The data sets measured one by one: each corpus's held-out windows, then the out-of-domain sets. */
  datasets: EvalSet[];
  units: Unit[];
  space: SearchSpace;
  signal: AbortSignal;
  /** The seconds of finalize's steps go here where they are measured in this process. */
  timings: Record<string, number>;
}

export type PipelineStage = 'calibration' | 'search' | 'finalize';

export interface PruneRunOptions {
  spec: SearchSpec;
  layout: DecoderLayout;
  /** The corpus as windows of the spec's length (`poolWindows`). */
  pool: TokenWindows;
  /** The corpora the pool was drawn from, in its order, with the number of windows each gave. */
  corpora: readonly { name: string; windows: number }[];
  /** Data sets never calibrated on, measured on windows of their own (`--eval-data`, `evalDatasetIds`). */
  outOfDomain: readonly { name: string; windows: TokenWindows }[];
  backend: PipelineBackend;
  store: PipelineStore;
  progress: SearchProgress;
  /** Called as each stage starts. */
  stage(stage: PipelineStage): Promise<void>;
  signal: AbortSignal;
  /** When the run first started (a resumed service job counts from its first start; default: now). */
  startedAt?: number;
  /** What report.json says of the run: the spec as the user gave it, the model, BOS, the exported file's name. */
  report: {
    spec: SearchSpec & Record<string, unknown>;
    model: { name: string; path: string; sha256: string };
    bos: boolean;
    modelFile: string;
  };
}

export interface PruneRun {
  units: Unit[];
  space: SearchSpace;
  searches: SearchResult[];
  front: SearchResult[];
  finalized: Finalized;
  report: PruneReport;
}

/**
 * A prune run, start to end, the same for `evop prune` and a service job: calibration (CCDS), the searches with
 * their checkpoints, finalize, report. Every stage's result is stored before the next starts, so a run stopped
 * anywhere (Ctrl-C, a coordinator taken over) resumes from what is stored, on this one code path; where the
 * model work runs and where state is kept are the backend's and the store's.
 */
export async function runPrunePipeline(options: PruneRunOptions): Promise<PruneRun> {
  const { spec, layout, pool, backend, store, signal } = options;
  const started = options.startedAt ?? Date.now();
  const timings: Record<string, number> = {};
  const time = async <T>(stage: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const result = await fn();
    timings[stage] = (Date.now() - t) / 1000;
    return result;
  };
  const plan = planSearch(layout, spec);
  const { units, space } = plan;

  await options.stage('calibration');
  let stored = await store.loadCalibration();
  if (stored && stored.calibration.poolSha256 !== pool.sha256)
    throw new PipelineError('data', 'no longer gives the windows this run was calibrated on');
  if (!stored) {
    const calibration = await time('calibration', async () => {
      const states = spec.sampling === 'ccds' ? await backend.pooledStates(pool, signal) : undefined;
      return backend.calibrate
        ? backend.calibrate(spec, pool, states, layout.hiddenSize, signal)
        : calibrate(spec, pool, states, layout.hiddenSize);
    });
    const sets = splitWindows(pool, calibration);
    const cosines = await time('influence', () => backend.unitCosines(sets.calibration, signal));
    stored = { calibration, influence: cosines.map((c) => 1 - c) };
    await store.saveCalibration(stored, sets);
  }
  const { calibration, influence } = stored;
  const sets = splitWindows(pool, calibration);

  await options.stage('search');
  const searchOptions = {
    spec,
    ...(await backend.search(sets.search)),
    influence,
    validation: validationFidelity(sets.search),
    progress: options.progress,
    signal,
  };
  const searches = await runSearches({ ...searchOptions, space });
  const front = await runFront({ ...searchOptions, spaces: plan.front, main: searches[0]! });
  await store.saveSearched(searches, front);

  const datasets = evalSets(options, calibration, sets.heldOut);
  await options.stage('finalize');
  const finalized = await time('finalize', () =>
    backend.finalize({
      searches: searches.map(summaryOf),
      front: front.map(summaryOf),
      heldOut: sets.heldOut,
      datasets,
      units,
      space,
      signal,
      timings,
    }),
  );
  const report = assembleReport({
    spec: options.report.spec,
    bos: options.report.bos,
    model: { ...options.report.model, layers: layout.layers, params: layout.totalParams, units },
    poolWindows: pool.count,
    datasets: datasets.map((d) => ({ name: d.name, domain: d.domain, windows: d.windows.count })),
    calibration,
    influence,
    searches,
    front,
    modelFile: options.report.modelFile,
    finalized,
    timings: { ...timings, total: (Date.now() - started) / 1000 },
  });
  return { units, space, searches, front, finalized, report };
}

/**
 * The data sets reported one by one: each corpus's share of the held-out windows (in-domain), then the
 * out-of-domain sets. With one corpus its set is the held-out set itself (finalize measures it once).
 */
function evalSets(options: PruneRunOptions, calibration: Calibration, heldOut: ClusteredWindows): EvalSet[] {
  let start = 0;
  const inDomain = options.corpora.map(({ name, windows }) => {
    const end = start + windows;
    const mine = calibration.heldOut.flatMap((w, i) => (w >= start && w < end ? [i] : []));
    start = end;
    return { name, domain: 'in' as const, windows: heldOut.windows.select(mine) };
  });
  if (start !== options.pool.count)
    throw new RangeError(`the corpora give ${start} windows, the pool holds ${options.pool.count}`);
  return [...inDomain, ...options.outOfDomain.map((d) => ({ ...d, domain: 'out' as const }))];
}
