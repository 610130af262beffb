import type { ServiceConfig } from '@evop/config';
import type { DecoderLayout } from '@evop/onnx';
import { PipelineError } from './pipeline-error.ts';
import type { SearchSpec } from './search-spec.ts';

type Maxima = Pick<ServiceConfig, 'maxSeqLen' | 'maxWindows' | 'maxClusters' | 'maxBudget' | 'maxTaskLimit'>;

/** Each service maximum: the spec field it bounds, its value in the spec, its setting and variable. */
const MAXIMA: {
  field: keyof SearchSpec;
  of: (s: SearchSpec) => number;
  setting: keyof Maxima;
  variable: string;
}[] = [
  { field: 'seqLen', of: (s) => s.seqLen, setting: 'maxSeqLen', variable: 'EVOP_MAX_SEQ_LEN' },
  { field: 'clusters', of: (s) => s.clusters, setting: 'maxClusters', variable: 'EVOP_MAX_CLUSTERS' },
  { field: 'budget', of: (s) => s.budget, setting: 'maxBudget', variable: 'EVOP_MAX_BUDGET' },
  { field: 'taskLimit', of: (s) => s.taskLimit, setting: 'maxTaskLimit', variable: 'EVOP_MAX_TASK_LIMIT' },
];

/**
 * Refuses a spec past this service's maxima, naming the field, the maximum and its variable: each bounds the work
 * one job puts on shared workers (a window's cost grows with seqLen², every window is evaluated for each mask, the
 * budget counts evaluations, the task limit zero-shot items). `evop prune` runs on the user's machine: it has none.
 */
export function checkServiceMaxima(spec: SearchSpec, maxima: Maxima): void {
  for (const { field, of, setting, variable } of MAXIMA)
    if (of(spec) > maxima[setting])
      throw new PipelineError(field, `at most ${maxima[setting]} on this service (${variable})`);
  // Each front target is one more search of `budget` evaluations (a spec of an earlier evop has no front).
  const searches = 1 + (spec.front ?? []).length;
  if (searches > 1 && spec.budget * searches > maxima.maxBudget)
    throw new PipelineError(
      'budget',
      `${spec.budget} per target × ${searches} targets = ${spec.budget * searches} evaluations, at most ` +
        `${maxima.maxBudget} on this service (EVOP_MAX_BUDGET)`,
    );
  const windows = spec.calibration + spec.heldOut;
  if (windows > maxima.maxWindows)
    // The larger of the two is the one to lower.
    throw new PipelineError(
      spec.calibration >= spec.heldOut ? 'calibration' : 'heldOut',
      `calibration ${spec.calibration} + heldOut ${spec.heldOut} = ${windows} windows, at most ` +
        `${maxima.maxWindows} on this service (EVOP_MAX_WINDOWS)`,
    );
}

/** Refuses a seqLen longer than the model's context, where its graph fixes one (a position table). */
export function checkContext(
  layout: Pick<DecoderLayout, 'maxPositions'>,
  spec: Pick<SearchSpec, 'seqLen'>,
): void {
  if (layout.maxPositions !== undefined && spec.seqLen > layout.maxPositions)
    throw new PipelineError(
      'seqLen',
      `${spec.seqLen} tokens, but the model's context is ${layout.maxPositions} positions (its position table)`,
    );
}
