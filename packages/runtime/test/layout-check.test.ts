import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { discoverLayers, type LoadedModel, ModelError, readModel, writeModel } from '@evop/onnx';
import { checkLayout, InferencePool, OnnxEvaluator } from '../src/index.ts';
import { cpuConfig, tempDir } from './helpers.ts';

const pool = new InferencePool({ config: cpuConfig() });
after(() => pool.close());

const ZOO = [
  'llama/model.ts.onnx',
  'qwen2/model.ts-past-fp16.onnx',
  'gptneox/model.dynamo.onnx',
  'opt/model.ts.onnx',
];

test('the layouts of real exports pass the self-check: the search graph gives their logits, every unit counts', async () => {
  for (const file of ZOO) {
    const model = readModel(resolveDataFile(`hf-zoo/${file}`));
    const check = await checkLayout(pool, model, discoverLayers(model.proto), tempDir());
    assert.ok(check.keptDifference <= 1e-5, `${file}: ${check.keptDifference}`);
    assert.ok(check.weakest.change > 1e-3, `${file}: ${JSON.stringify(check.weakest)}`);
  }
});

test('a unit whose removal changes nothing is refused before any search relies on the layout', async () => {
  const source = readModel(resolveDataFile('hf-zoo/llama/model.ts.onnx'));
  const layout = discoverLayers(source.proto);
  // Layer 2's attention made dead: its output projection all zeros.
  const attn2 = layout.blocks.find((b) => b.kind === 'attn' && b.layer === 2)!;
  const projection = source.proto.graph.node.find((n) => n.output.includes(attn2.branch))!;
  const weight = source.proto.graph.initializer.find((t) => projection.input.includes(t.name))!;
  weight.rawData = new Uint8Array(weight.rawData.length);
  const path = join(tempDir(), 'model.onnx');
  writeModel(source.proto, path);
  const model: LoadedModel = readModel(path);
  await assert.rejects(
    OnnxEvaluator.create({
      pool,
      model,
      layout: discoverLayers(model.proto),
      granularity: 'layer',
      cacheDir: tempDir(),
    }),
    (err: unknown) =>
      err instanceof ModelError &&
      /self-check failed: removing attn2 does not change the model's logits/.test(err.message),
  );
});
