export type { DecoderLayout, GraphInputSpec, ResidualBlock } from './decoder-layout.ts';
export { DISCOVERY_VERSION, discoverLayers } from './discover-layers.ts';
export { MaskError, ModelError, type ModelErrorCode } from './errors.ts';
export {
  GATE_INPUT,
  IGNORE_LABEL,
  INSTRUMENT_VERSION,
  type InstrumentOptions,
  instrument,
  LABELS_INPUT,
  LAST_LOGITS_OUTPUT,
} from './instrument.ts';
export { type Llama2cCheckpoint, type Llama2cConfig, readLlama2cCheckpoint } from './llama2c-checkpoint.ts';
export { llama2cToOnnx } from './llama2c-to-onnx.ts';
export {
  checkMaskFits,
  fingerprintOf,
  type MaskFile,
  type ModelFingerprint,
  maskFileOf,
} from './mask-file.ts';
export {
  derivableIn,
  type LoadedModel,
  modelSha256,
  type ReadOptions,
  readModel,
  sampleTensor,
  type WriteOptions,
  writeModel,
  writeModelAsync,
} from './model-file.ts';
export { DataType, decodeModel, encodeModel, type ModelProto } from './proto.ts';
export { type PruneOptions, pruneModel } from './prune.ts';
export { ORIGINAL_LOGITS_OUTPUT, selfCheckGraph } from './self-check-graph.ts';
export { halfToFloat } from './tensor.ts';
export {
  type CutType,
  joinSegments,
  type Segment,
  segmentModel,
  splitAtUnits,
  withOutputs,
} from './unit-segments.ts';
export { checkMask, type Granularity, type Unit, unitsOf } from './units.ts';
