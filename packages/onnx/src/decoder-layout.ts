/**
 * One residual branch of the decoder: `output = skip + branch (+ the other branches of a parallel-residual
 * layer)`, where `branch` is computed from `input` and `skip` is `input` passed on unchanged in value.
 */
export interface ResidualBlock {
  kind: 'attn' | 'mlp';
  layer: number;
  /** The residual stream the branch reads. */
  input: string;
  /** The branch's result: what it adds to the stream. */
  branch: string;
  /** The stream operand of the residual sum: `input` itself, or `input` through value-preserving ops. */
  skip: string;
  /** The residual sum's output: the stream after this block (shared by the branches of a parallel layer). */
  output: string;
  /** The PyTorch module the branch was exported from (`model.layers.3.self_attn`), when the export says. */
  module?: string;
  /** Parameters (elements) and their bytes in initializers only this branch uses. */
  params: number;
  paramBytes: number;
  /** KV-cache graph inputs the branch reads and outputs it writes (attention blocks only). */
  pastInputs: string[];
  presentOutputs: string[];
}

export interface GraphInputSpec {
  name: string;
  elemType: number;
  /** Fixed sizes as numbers, symbolic ones as their names. */
  shape: (number | string)[];
}

/** What layer discovery found in an unmodified decoder export; plain JSON, kept with the model. */
export interface DecoderLayout {
  /** The discovery that produced it (`DISCOVERY_VERSION`): a stored layout of another version is found again. */
  version: number;
  /** Residual blocks in stream order (attn0, mlp0, attn1, …; a parallel layer's attention before its MLP). */
  blocks: ResidualBlock[];
  layers: number;
  /** Per layer, the PyTorch module it was exported from (`model.layers.3`), when the export says. */
  layerModules?: (string | undefined)[];
  inputs: GraphInputSpec[];
  inputIds: string;
  attentionMask: string | undefined;
  positionIds: string | undefined;
  /** Positions of the new tokens as one vector (`cache_position`), when the export takes them. */
  cachePosition?: string;
  /** Segment ids (`token_type_ids`), fed as zeros, when the export takes them. */
  tokenTypeIds?: string;
  /**
   * The longest sequence the model takes, where its graph fixes it (a learned position table, a precomputed rotary
   * table: `maxPositionsOf`); absent where positions are computed (rotary angles from frequencies).
   */
  maxPositions?: number;
  logits: string;
  /** The token embedding's weight (initializer) [vocab, hidden]. */
  embedding: string;
  vocabSize: number;
  hiddenSize: number;
  /** ONNX element type of the residual stream (FLOAT = 1, FLOAT16 = 10). */
  streamType: number;
  /** The stream after the last block, before the final norm. */
  finalStream: string;
  /** All parameters of the model (elements). */
  totalParams: number;
}
