import type { Unit } from '@evop/onnx';
import type { Calibration } from './calibration.ts';
import type { Finalized } from './finalize.ts';
import { frontSearchName, paretoOptimal } from './front.ts';
import type { EvalDataset, FrontPoint, PruneReport } from './report.ts';
import type { SearchSpec } from './search-spec.ts';
import type { SearchResult } from './searches.ts';

export interface ReportParts {
  spec: SearchSpec & Record<string, unknown>;
  /** Whether the tokenizer adds BOS (part of the protocol). */
  bos: boolean;
  model: {
    name: string;
    path: string;
    sha256: string;
    layers: number;
    params: number;
    units: readonly Unit[];
  };
  /** The data sets the comparison gives held-out perplexity for, one by one (each row's `datasets`). */
  datasets: EvalDataset[];
  poolWindows: number;
  calibration: Calibration;
  influence: number[];
  searches: readonly SearchResult[];
  /** The front's other searches (their seconds go to `timings`). */
  front: readonly SearchResult[];
  /** The exported model's file name as the user receives it. */
  modelFile: string;
  finalized: Finalized;
  timings: Record<string, number>;
}

/** report.json: the numbers with the protocol that produced them, the same for a local run and a service job. */
export function assembleReport(parts: ReportParts): PruneReport {
  const { spec, calibration, finalized } = parts;
  const heldClusters = calibration.heldOut.map((i) => calibration.assignments[i]!);
  return {
    spec,
    protocol: {
      seqLen: spec.seqLen,
      bos: parts.bos,
      windows: {
        pool: parts.poolWindows,
        calibration: calibration.calibration.length,
        heldOut: heldClusters.length,
      },
      prediction: 'every token after the first of a window; perplexity = exp(ΣNLL / Σcount)',
      sampling: spec.sampling,
      objective: spec.objective,
      datasets: parts.datasets,
    },
    model: {
      name: parts.model.name,
      path: parts.model.path,
      sha256: parts.model.sha256,
      layers: parts.model.layers,
      units: parts.model.units.map((u) => ({
        id: u.id,
        params: u.params,
        ...(u.module ? { module: u.module } : {}),
      })),
      params: parts.model.params,
    },
    calibration: {
      clusters: calibration.clusterSizes.map((size, c) => ({
        size,
        calibration: calibration.calibrationClusters.filter((x) => x === c).length,
        heldOut: heldClusters.filter((x) => x === c).length,
      })),
      calibrationWindows: calibration.calibration,
      heldOutWindows: calibration.heldOut,
      assignments: calibration.assignments,
      poolSha256: calibration.poolSha256,
    },
    influence: parts.influence,
    searches: parts.searches.map((s) => ({ strategy: s.name, best: s.best, history: s.history })),
    result: {
      mask: finalized.mask,
      pruned: finalized.pruned,
      prunedModules: finalized.pruned.map((id) => parts.model.units.find((u) => u.id === id)?.module ?? null),
      model: parts.modelFile,
      consistency: finalized.consistency,
    },
    table: finalized.table,
    latency: finalized.latency,
    front: frontOf(finalized, parts.searches[0]!),
    failed: finalized.failed,
    versions: { evop: '0.1.0', node: process.version, onnxruntime: finalized.onnxruntime },
    timings: {
      ...Object.fromEntries(parts.searches.map((s) => [`search:${s.name}`, s.seconds])),
      ...Object.fromEntries(
        parts.front.map((s) => [`search:${frontSearchName(s.name, s.pruned)}`, s.seconds]),
      ),
      ...parts.timings,
    },
  };
}

/** The front as the report gives it: the spec's target among the front's points, by units, Pareto marked. */
function frontOf(finalized: Finalized, main: SearchResult): PruneReport['front'] {
  if (finalized.front.length === 0) return [];
  const row = finalized.table[1]!;
  const target: FrontPoint = {
    units: main.pruned,
    mask: finalized.mask,
    pruned: finalized.pruned,
    model: 'model.onnx',
    perplexity: row.perplexity,
    datasets: row.datasets,
    calibrationFitness: main.best.fitness,
    evaluations: row.evaluations,
    params: row.params,
    latency: finalized.latency,
  };
  const points = [
    { ...target, target: true },
    ...finalized.front.map(({ dir: _, ...p }) => ({ ...p, target: false })),
  ].sort((a, b) => a.units - b.units);
  const pareto = paretoOptimal(points);
  return points.map((p, i) => ({ ...p, pareto: pareto[i]! }));
}
