import { join } from 'node:path';
import { type Llama2cCheckpoint, type Llama2cConfig, llama2cToOnnx, writeModel } from '@evop/onnx';

/**
 * `tinyllama`: TinyLlama-1.1B's shape (22 layers of dim 2048, SwiGLU 5632, 32 heads with 4 KV heads, 32,000
 * tokens; 1.1 B parameters, 4.1 GiB in fp32); `medium`: 8 layers of dim 1024 (0.16 B, 0.6 GiB), to try the bench.
 */
export const SHAPES = {
  tinyllama: {
    dim: 2048,
    hiddenDim: 5632,
    nLayers: 22,
    nHeads: 32,
    nKvHeads: 4,
    vocabSize: 32000,
    seqLen: 2048,
    tied: false,
  },
  medium: {
    dim: 1024,
    hiddenDim: 2816,
    nLayers: 8,
    nHeads: 16,
    nKvHeads: 4,
    vocabSize: 32000,
    seqLen: 2048,
    tied: false,
  },
} satisfies Record<string, Llama2cConfig>;
export type ShapeName = keyof typeof SHAPES;

/**
 * Uniform values in ±scale from a seeded xorshift32: fast enough for a billion weights (the bench measures evop
 * on a model of real size, not what the weights say, so random weights do).
 */
function randomArray(length: number, state: { s: number }, scale: number): Float32Array {
  const out = new Float32Array(length);
  let s = state.s;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  state.s = s;
  return out;
}

/** A llama2.c-layout checkpoint of the given shape with seeded random weights (norm weights 1). */
export function randomCheckpoint(config: Llama2cConfig, seed: number): Llama2cCheckpoint {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize } = config;
  const kvDim = (dim / nHeads) * nKvHeads;
  const state = { s: seed | 0 || 1 };
  const matrix = (rows: number, cols: number) => randomArray(rows * cols, state, 1 / Math.sqrt(cols));
  const layers = <T>(make: () => T) => Array.from({ length: nLayers }, make);
  const ones = () => new Float32Array(dim).fill(1);
  return {
    config,
    tokenEmbedding: randomArray(vocabSize * dim, state, 1),
    rmsAtt: layers(ones),
    wq: layers(() => matrix(dim, dim)),
    wk: layers(() => matrix(kvDim, dim)),
    wv: layers(() => matrix(kvDim, dim)),
    wo: layers(() => matrix(dim, dim)),
    rmsFfn: layers(ones),
    w1: layers(() => matrix(hiddenDim, dim)),
    w2: layers(() => matrix(dim, hiddenDim)),
    w3: layers(() => matrix(hiddenDim, dim)),
    rmsFinal: ones(),
    wcls: config.tied ? new Float32Array(0) : matrix(vocabSize, dim),
  };
}

/** The model written as `<dir>/model.onnx` with its weights in `model.onnx.data`; returns the .onnx path. */
export function writeScaleModel(dir: string, config: Llama2cConfig, seed: number): string {
  const path = join(dir, 'model.onnx');
  writeModel(llama2cToOnnx(randomCheckpoint(config, seed)), path, { externalData: 'external' });
  return path;
}
