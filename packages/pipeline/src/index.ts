export { assembleReport, type ReportParts } from './assemble-report.ts';
export {
  balancedOrder,
  type Calibration,
  type ClusteredWindows,
  calibrate,
  splitWindows,
} from './calibration.ts';
export {
  type Finalized,
  type FinalizeOptions,
  finalize,
  memoryStages,
  type StageFailure,
  type StageStore,
} from './finalize.ts';
export { PipelineError } from './pipeline-error.ts';
export { poolSize, poolWindows } from './pool-windows.ts';
export { PrefixEvaluator, prefixLength } from './prefix-evaluator.ts';
export {
  latencyText,
  type PruneReport,
  type ReportRow,
  renderReportHtml,
  reportTable,
  type TaskScore,
  targetText,
} from './report.ts';
export { planSearch } from './search-space.ts';
export { PEERS, type SearchSpec, searchSpecSchema, strategiesOf } from './search-spec.ts';
export {
  type CheckpointStore,
  Interrupted,
  type RunSearchesOptions,
  runSearches,
  type SearchProgress,
  type SearchResult,
  type SearchSummary,
  summaryOf,
} from './searches.ts';
