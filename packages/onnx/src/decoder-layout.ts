/** One residual branch of the decoder: `output = input + branch`, where `branch` is computed from `input`. */
export interface ResidualBlock {
  kind: 'attn' | 'mlp';
  layer: number;
  /** The residual stream the branch reads and its Add adds to. */
  input: string;
  /** The branch's result, the Add's other operand. */
  branch: string;
  /** The residual Add's output: the stream after this block. */
  output: string;
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
  /** Residual blocks in stream order (attn0, mlp0, attn1, …). */
  blocks: ResidualBlock[];
  layers: number;
  inputs: GraphInputSpec[];
  inputIds: string;
  attentionMask: string | undefined;
  positionIds: string | undefined;
  logits: string;
  vocabSize: number;
  hiddenSize: number;
  /** ONNX element type of the residual stream (FLOAT = 1, FLOAT16 = 10). */
  streamType: number;
  /** The stream after the last block, before the final norm. */
  finalStream: string;
  /** All parameters of the model (elements). */
  totalParams: number;
}
