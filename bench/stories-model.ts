import { join } from 'node:path';
import { resolveDataFile } from '@evop/config';
import { Llama2cTokenizer } from '@evop/data';
import { discoverLayers, llama2cToOnnx, readLlama2cCheckpoint, readModel, writeModel } from '@evop/onnx';
import { type InferencePool, OnnxEvaluator } from '@evop/runtime';

export type StoriesModelName = 'stories260K' | 'stories-deep16';

/** A benchmark setting: how many units of which kind to prune from which model, and its budget if not the default. */
export interface StoriesSetting {
  model: StoriesModelName;
  granularity: 'layer' | 'sublayer';
  units: number;
  budget?: number;
}

/** A setting's label, which the benchmarks' filters match: `stories-deep16 8/32 sublayers, budget 1000`. */
export function settingLabel(s: StoriesSetting): string {
  const layers = s.model === 'stories260K' ? 5 : 16;
  const budget = s.budget ? `, budget ${s.budget}` : '';
  return `${s.model} ${s.units}/${s.granularity === 'layer' ? layers : 2 * layers} ${s.granularity}s${budget}`;
}

/**
 * One of the shared TinyStories llama2.c checkpoints, converted to `<dir>/<name>.onnx` and read back as a user's
 * export would be, with its layout and tokenizer.
 */
export function storiesModel(name: StoriesModelName, dir: string) {
  const path = join(dir, `${name}.onnx`);
  writeModel(llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile(`${name}/${name}.bin`))), path);
  const model = readModel(path);
  return {
    model,
    layout: discoverLayers(model.proto),
    tokenizer: Llama2cTokenizer.fromFile(resolveDataFile(`${name}/tok512.bin`)),
  };
}

/** `storiesModel` with its dense evaluator at a granularity, on `pool`, caching under `dir`. */
export async function storiesEvaluator(
  name: StoriesModelName,
  granularity: 'layer' | 'sublayer',
  pool: InferencePool,
  dir: string,
) {
  const { model, layout, tokenizer } = storiesModel(name, dir);
  const dense = await OnnxEvaluator.create({ pool, model, layout, granularity, cacheDir: dir });
  return { layout, tokenizer, dense };
}
