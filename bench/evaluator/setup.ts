import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile } from '@evop/config';
import { Llama2cTokenizer, readCorpus, windowsFromDocuments } from '@evop/data';
import { discoverLayers, llama2cToOnnx, readLlama2cCheckpoint, readModel, writeModel } from '@evop/onnx';

/** The benchmark's fixed protocol: stories-deep16, 64 windows × 256 tokens, 4 of 16 layers pruned. */
export const PROTOCOL = {
  model: 'stories-deep16',
  windows: 64,
  seqLen: 256,
  layers: 16,
  pruned: 4,
  masks: 8,
};

export const workDir = join(tmpdir(), 'evop-bench-evaluator');

export const LARGE_VOCAB = 32000;

/** A seeded LCG in [0, 1): the masks and the large-vocabulary embedding are the same in every variant. */
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/**
 * The model and windows of a run. `largeVocab`: the same network with a seeded random 32,000 × 128 embedding
 * (tied classifier) instead of the 512-token one, on 16 windows: for speed only, where the logits are the size
 * of a real LLM's.
 */
export function setup(largeVocab = false) {
  mkdirSync(workDir, { recursive: true });
  const path = join(workDir, largeVocab ? 'deep16-vocab32k.onnx' : 'deep16.onnx');
  const checkpoint = readLlama2cCheckpoint(resolveDataFile('stories-deep16/stories-deep16.bin'));
  if (largeVocab) {
    const random = lcg(7);
    checkpoint.tokenEmbedding = Float32Array.from(
      { length: LARGE_VOCAB * checkpoint.config.dim },
      () => (random() - 0.5) * 0.1,
    );
    checkpoint.wcls = checkpoint.tokenEmbedding;
    checkpoint.config = { ...checkpoint.config, vocabSize: LARGE_VOCAB };
  }
  writeModel(llama2cToOnnx(checkpoint), path);
  const model = readModel(path);
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories-deep16/tok512.bin'));
  const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  const windows = windowsFromDocuments(docs, tokenizer, PROTOCOL.seqLen, largeVocab ? 16 : PROTOCOL.windows);
  return { model, layout: discoverLayers(model.proto), windows, masks: randomMasks(PROTOCOL.masks) };
}

/**
 * `count` distinct masks pruning `pruned` of the layers, from a fixed-seed LCG so every variant gets the same ones
 * (the first eight are the protocol's).
 */
export function randomMasks(count: number): string[] {
  const next = lcg(12345);
  const out = new Set<string>();
  while (out.size < count) {
    const bits = Array.from({ length: PROTOCOL.layers }, () => '1');
    for (let removed = 0; removed < PROTOCOL.pruned; ) {
      const i = Math.floor(next() * PROTOCOL.layers);
      if (bits[i] === '1') {
        bits[i] = '0';
        removed++;
      }
    }
    out.add(bits.join(''));
  }
  return [...out];
}
