/**
 * What the control plane needs (the API, coordinators, the queue's task schemas): the spec, search planning,
 * calibration, the search loop and report assembly. Nothing here loads onnxruntime; running models (`finalize`,
 * `PrefixEvaluator`) is in the package's main entry, for `evop prune` and workers.
 */
export { assembleReport, type ReportParts } from './assemble-report.ts';
export {
  balancedOrder,
  type Calibration,
  type ClusteredWindows,
  calibrate,
  type SearchWindows,
  splitWindows,
  validationFidelity,
} from './calibration.ts';
export { CalibrationThreads } from './calibration-threads.ts';
export type { EvalSet, Finalized, StageFailure } from './finalize.ts';
export { frontDir, frontSearchName, paretoOptimal, runFront } from './front.ts';
export {
  type EarlierLatency,
  isEarlierLatency,
  latencyLines,
  modelLatencyLines,
  type ReportLatency,
  speedupCells,
  speedupText,
} from './latency-text.ts';
export { PipelineError } from './pipeline-error.ts';
export { poolSize, poolWindows } from './pool-windows.ts';
export {
  type FinalizeStage,
  type PipelineBackend,
  type PipelineStage,
  type PipelineStore,
  type PruneRun,
  type PruneRunOptions,
  runPrunePipeline,
  type StoredCalibration,
} from './prune-pipeline.ts';
export {
  datasetHeading,
  type EvalDataset,
  FRONT_CHART_SCRIPT,
  type FrontPoint,
  frontSeries,
  frontText,
  latencyText,
  modelName,
  type PruneReport,
  prunedText,
  type ReportRow,
  renderReportHtml,
  reportTable,
  type TaskScore,
  targetText,
} from './report.ts';
export { planSearch, type SearchPlan } from './search-space.ts';
export {
  PEERS,
  parseSearchSpec,
  SEARCH_SPEC_DEFAULTS,
  type SearchSpec,
  searchSpecSchema,
  strategiesOf,
} from './search-spec.ts';
export {
  type CheckpointStore,
  Interrupted,
  type RunSearchesOptions,
  runSearches,
  type SearchProgress,
  type SearchResult,
  type SearchSummary,
  searchOnce,
  summaryOf,
} from './searches.ts';
export { checkContext, checkServiceMaxima } from './spec-limits.ts';
export { checkTaskMemory, taskMemoryBytes } from './task-memory.ts';
export { checkVocabulary } from './vocabulary.ts';
