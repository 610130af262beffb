import { readFileSync } from 'node:fs';
import { ModelError } from './errors.ts';

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** The classifier is the token embedding (llama2.c marks an untied one with a negative vocab size). */
  tied: boolean;
}

/** Weights in llama2.c's layout: matrices [out, in] row-major, one array per layer. */
export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  tokenEmbedding: Float32Array;
  rmsAtt: Float32Array[];
  wq: Float32Array[];
  wk: Float32Array[];
  wv: Float32Array[];
  wo: Float32Array[];
  rmsFfn: Float32Array[];
  w1: Float32Array[];
  w2: Float32Array[];
  w3: Float32Array[];
  rmsFinal: Float32Array;
  wcls: Float32Array;
}

const HEADER_BYTES = 28;
const V1_MAGIC = 0x616b3432;

/** Reads a llama2.c legacy (version 0) checkpoint, checking its size against the header before trusting it. */
export function readLlama2cCheckpoint(path: string): Llama2cCheckpoint {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new ModelError(
      'unreadable',
      `cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  if (buf.length < HEADER_BYTES)
    throw new ModelError('unreadable', `'${path}' is too short for a llama2.c checkpoint`);
  if (buf.readUInt32LE(0) === V1_MAGIC)
    throw new ModelError(
      'unsupported-format',
      `'${path}' is a llama2.c version ${buf.readInt32LE(4)} checkpoint; only the legacy (version 0) format is read`,
    );
  const h = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(i * 4));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = h as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const config: Llama2cConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    seqLen,
    tied: vocab > 0,
  };
  if (h.some((v, i) => i !== 5 && v <= 0) || vocab === 0 || dim % nHeads !== 0 || nHeads % nKvHeads !== 0)
    throw new ModelError('unreadable', `'${path}' has an invalid llama2.c header: ${h.join(', ')}`);

  const headSize = dim / nHeads;
  const kvDim = (dim * nKvHeads) / nHeads;
  const V = config.vocabSize;
  // The file's order; per-layer tensors are stored as L consecutive arrays.
  const layerSizes = {
    rmsAtt: dim,
    wq: dim * dim,
    wk: kvDim * dim,
    wv: kvDim * dim,
    wo: dim * dim,
    rmsFfn: dim,
    w1: hiddenDim * dim,
    w2: dim * hiddenDim,
    w3: hiddenDim * dim,
  };
  const ropeTable = seqLen * headSize; // freq_cis_real and _imag, seqLen × headSize/2 each; RoPE is recomputed
  const floatCount =
    V * dim +
    nLayers * Object.values(layerSizes).reduce((a, b) => a + b, 0) +
    dim +
    ropeTable +
    (config.tied ? 0 : V * dim);
  const expected = HEADER_BYTES + 4 * floatCount;
  if (buf.length !== expected)
    throw new ModelError(
      'unreadable',
      `'${path}' is ${buf.length} bytes; a llama2.c checkpoint with header ${h.join(', ')} has ${expected}`,
    );

  const floats = new Float32Array(
    buf.buffer.slice(buf.byteOffset + HEADER_BYTES, buf.byteOffset + buf.length),
  );
  let offset = 0;
  const take = (n: number) => {
    offset += n;
    return floats.subarray(offset - n, offset);
  };
  const tokenEmbedding = take(V * dim);
  const layers = Object.fromEntries(
    Object.entries(layerSizes).map(([name, size]) => [
      name,
      Array.from({ length: nLayers }, () => take(size)),
    ]),
  ) as Record<keyof typeof layerSizes, Float32Array[]>;
  const rmsFinal = take(dim);
  take(ropeTable);
  const wcls = config.tied ? tokenEmbedding : take(V * dim);
  return { config, tokenEmbedding, ...layers, rmsFinal, wcls };
}
