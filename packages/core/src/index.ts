export { type CalibrationOptions, type CalibrationSet, selectCalibration } from './ccds.ts';
export { createStrategy, STRATEGIES, type StrategyName, type StrategyOptions } from './create-strategy.ts';
export { SearchOptionError } from './errors.ts';
export {
  type Best,
  type Candidate,
  type EvaluationResult,
  type Evaluator,
  fitnessOf,
  OBJECTIVES,
  type Objective,
  type Scored,
} from './evaluation.ts';
export { cacheKey, type FitnessCache, MemoryFitnessCache } from './fitness-cache.ts';
export { Rng } from './rng.ts';
export {
  type GenerationRecord,
  type RunSearchOptions,
  runSearch,
  type SearchCheckpoint,
  type SearchOutcome,
} from './run-search.ts';
export { SearchSpace, type SearchSpaceOptions, type Target, type UnitInfo } from './search-space.ts';
export { EVOP_DEFAULTS, type EvopOptions, type EvopStrategy } from './strategies/evop.ts';
export { EVOPRESS_DEFAULTS, type EvopressOptions } from './strategies/evopress.ts';
export type { Strategy, StrategyState } from './strategy.ts';
