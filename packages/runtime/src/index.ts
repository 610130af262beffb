export { cacheCarry, type DecoderBatch, decoderFeeds, hasCache } from './decoder-feeds.ts';
export { InferencePool, type InferencePoolOptions } from './inference-pool.ts';
export {
  compareLatency,
  type LatencyComparison,
  type LatencyOptions,
  type LatencyProtocol,
  type LatencyResult,
  measureLatency,
  type PhaseComparison,
  type PhaseRounds,
  type PhaseSpeed,
  type TimedModel,
} from './latency.ts';
export { checkLayout, type LayoutCheck } from './layout-check.ts';
export type { MaskScorer } from './mask-sums.ts';
export {
  type Estimate,
  isTight,
  medianInterval,
  type Verdict,
  verdictOf,
} from './median-interval.ts';
export {
  type MaskEvaluation,
  type NllSum,
  OnnxEvaluator,
  type OnnxEvaluatorOptions,
  type ScoredSequence,
} from './onnx-evaluator.ts';
export { onnxruntimeVersion, type Provider, ProviderUnavailableError } from './session-factory.ts';
export { TrieEvaluator } from './trie-evaluator.ts';
export { UnsupportedInputError, type WireFeeds, type WireTensor } from './wire-tensor.ts';
export { scoreMultipleChoice, type ZeroShotItemResult, type ZeroShotResult } from './zero-shot.ts';
