import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RuntimeConfig, resolveDataFile, runtimeConfig } from '@evop/config';
import { Llama2cTokenizer, readCorpus, type TokenWindows, windowsFromDocuments } from '@evop/data';
import {
  discoverLayers,
  type LoadedModel,
  llama2cToOnnx,
  readLlama2cCheckpoint,
  readModel,
  writeModel,
} from '@evop/onnx';
import { InferencePool, OnnxEvaluator } from '../src/index.ts';

export const tokenizer = () => Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'evop-runtime-test-'));
}

const models = new Map<string, LoadedModel>();
/** A llama2.c checkpoint of the shared data converted to ONNX in a temp folder (once per file). */
export function modelFile(checkpoint: string): LoadedModel {
  let model = models.get(checkpoint);
  if (!model) {
    const path = join(tempDir(), 'model.onnx');
    writeModel(llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile(checkpoint))), path);
    model = readModel(path);
    models.set(checkpoint, model);
  }
  return model;
}

/** TinyStories validation text under the evaluation protocol. */
export function stories(seqLen: number, count: number): TokenWindows {
  const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  return windowsFromDocuments(docs, tokenizer(), seqLen, count);
}

export function cpuConfig(overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  return { ...runtimeConfig({ EVOP_PROVIDER: 'cpu' }), ...overrides };
}

export async function evaluatorFor(
  checkpoint: string,
  config: RuntimeConfig = cpuConfig(),
  granularity: 'layer' | 'sublayer' = 'layer',
): Promise<{ evaluator: OnnxEvaluator; pool: InferencePool }> {
  const model = modelFile(checkpoint);
  const pool = new InferencePool({ config });
  const evaluator = await OnnxEvaluator.create({
    pool,
    model,
    layout: discoverLayers(model.proto),
    granularity,
    cacheDir: tempDir(),
  });
  return { evaluator, pool };
}
