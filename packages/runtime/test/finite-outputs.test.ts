import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { type DecoderLayout, discoverLayers, ModelError, readModel, writeModel } from '@evop/onnx';
import { InferencePool, OnnxEvaluator } from '../src/index.ts';
import { cpuConfig, stories, tempDir } from './helpers.ts';

const pool = new InferencePool({ config: cpuConfig() });
after(() => pool.close());

const SOURCE = 'stories260K-onnx-hfstyle/model.onnx';
const windows = stories(64, 8);

/** The fixture with the embedding rows of `tokens` (every row when absent) set to NaN, written to a temp folder. */
function nanModel(tokens?: number[]) {
  const { proto } = readModel(resolveDataFile(SOURCE));
  const layout = discoverLayers(proto);
  const weight = proto.graph.initializer.find((t) => t.name === layout.embedding)!;
  const values = new Float32Array(Uint8Array.from(weight.rawData).buffer);
  for (const token of tokens ?? Array.from({ length: layout.vocabSize }, (_, t) => t))
    values.fill(Number.NaN, token * layout.hiddenSize, (token + 1) * layout.hiddenSize);
  weight.rawData = new Uint8Array(values.buffer);
  const path = join(tempDir(), 'model.onnx');
  writeModel(proto, path);
  return { model: readModel(path), layout };
}

const create = (made: ReturnType<typeof nanModel>) =>
  OnnxEvaluator.create({ pool, ...made, granularity: 'sublayer', cacheDir: tempDir() });

const notFinite = (what: string, where: string) => (err: unknown) =>
  err instanceof ModelError &&
  err.code === 'not-finite' &&
  err.message === `the model's ${what} are not finite (NaN) on ${where}; the model cannot be scored`;

test('a model whose logits are NaN everywhere is refused by the self-check with that reason', async () => {
  await assert.rejects(create(nanModel()), notFinite('logits', "the self-check's tokens"));
});

test('NaN that only some windows reach is named with the window, in every kind of output', async () => {
  // The tokens of the self-check (layout-check.ts) are left alone, so that it passes and the windows meet the NaN.
  const made = nanModel([windows.window(3)[10]!]);
  const selfCheck = (layout: DecoderLayout) =>
    Array.from({ length: 8 }, (_, t) => 1 + ((t * 7919) % Math.max(1, layout.vocabSize - 1)));
  assert.ok(!selfCheck(made.layout).includes(windows.window(3)[10]!));
  const firstHit = Array.from({ length: windows.count }, (_, w) => w).find((w) =>
    windows.window(w).includes(windows.window(3)[10]!),
  )!;
  const evaluator = await create(made);
  const where = `window ${firstHit}`;
  await assert.rejects(evaluator.evaluate([evaluator.allKept], windows), notFinite('logits', where));
  const pruned = `0${evaluator.allKept.slice(1)}`;
  await assert.rejects(
    evaluator.evaluate([pruned], windows),
    notFinite('logits', `${where} (mask ${pruned})`),
  );
  await assert.rejects(evaluator.pooledStates(windows), notFinite('hidden states', where));
  await assert.rejects(evaluator.unitCosines(windows), notFinite('hidden states', where));
  await assert.rejects(
    evaluator.logLikelihoods([{ ids: Array.from(windows.window(firstHit)), from: 1 }]),
    notFinite('logits', 'sequence 0'),
  );
});
