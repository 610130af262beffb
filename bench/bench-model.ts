import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveDataFile } from '@evop/config';
import { loadTokenizer } from '@evop/data';
import {
  discoverLayers,
  type LoadedModel,
  llama2cToOnnx,
  readLlama2cCheckpoint,
  readModel,
  unitsOf,
  writeModel,
} from '@evop/onnx';
import { type InferencePool, OnnxEvaluator } from '@evop/runtime';

/**
 * A benchmark model: one of the shared TinyStories llama2.c checkpoints, converted by evop, or an hf-zoo family
 * (`hf-zoo/llama`, …) as PyTorch's TorchScript exporter wrote it (see ../shared/data/hf-zoo/README.md).
 */
export type BenchModelName = 'stories260K' | 'stories-deep16' | `hf-zoo/${string}`;

/** A benchmark setting: how many units of which kind to prune from which model, and its budget if not the default. */
export interface BenchSetting {
  model: BenchModelName;
  granularity: 'layer' | 'sublayer';
  units: number;
  budget?: number;
}

/** The hf-zoo families that have a TorchScript export, as model names. */
export function zooModels(): BenchModelName[] {
  const zoo = dirname(resolveDataFile('hf-zoo/README.md'));
  return readdirSync(zoo)
    .filter((family) => existsSync(join(zoo, family, 'model.ts.onnx')))
    .sort()
    .map((family) => `hf-zoo/${family}` as const);
}

const isZoo = (name: BenchModelName): name is `hf-zoo/${string}` => name.startsWith('hf-zoo/');

/** The model's decoder layers, before any evaluator is made: labels are needed to choose what to run. */
export function modelLayers(name: BenchModelName): number {
  let layers = layerCounts.get(name);
  if (layers === undefined) {
    layers = isZoo(name)
      ? unitsOf(discoverLayers(readModel(zooFile(name)).proto), 'layer').length
      : readLlama2cCheckpoint(resolveDataFile(`${name}/${name}.bin`)).config.nLayers;
    layerCounts.set(name, layers);
  }
  return layers;
}
const layerCounts = new Map<BenchModelName, number>();

const zooFile = (name: `hf-zoo/${string}`) => resolveDataFile(`${name}/model.ts.onnx`);

/** A setting's label, which the benchmarks' filters match: `stories-deep16 8/32 sublayers, budget 1000`. */
export function settingLabel(s: BenchSetting): string {
  const layers = modelLayers(s.model);
  const budget = s.budget ? `, budget ${s.budget}` : '';
  return `${s.model} ${s.units}/${s.granularity === 'layer' ? layers : 2 * layers} ${s.granularity}s${budget}`;
}

/**
 * A benchmark model read back as a user's export would be, with its layout and tokenizer; a stories checkpoint is
 * first converted to `<dir>/<name>.onnx`.
 */
export function benchModel(name: BenchModelName, dir: string) {
  let model: LoadedModel;
  if (isZoo(name)) model = readModel(zooFile(name));
  else {
    const path = join(dir, `${name}.onnx`);
    writeModel(llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile(`${name}/${name}.bin`))), path);
    model = readModel(path);
  }
  return {
    model,
    layout: discoverLayers(model.proto),
    tokenizer: loadTokenizer(resolveDataFile(isZoo(name) ? 'hf-zoo/tokenizer.json' : `${name}/tok512.bin`)),
  };
}

/** `benchModel` with its dense evaluator at a granularity, on `pool`, caching under `dir`. */
export async function benchEvaluator(
  name: BenchModelName,
  granularity: 'layer' | 'sublayer',
  pool: InferencePool,
  dir: string,
) {
  const { model, layout, tokenizer } = benchModel(name, dir);
  const dense = await OnnxEvaluator.create({ pool, model, layout, granularity, cacheDir: dir });
  return { layout, tokenizer, dense };
}
