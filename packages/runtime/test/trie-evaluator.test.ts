import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { DataType, discoverLayers, type Granularity, type LoadedModel, readModel } from '@evop/onnx';
import { InferencePool, OnnxEvaluator, TrieEvaluator } from '../src/index.ts';
import { cpuConfig, modelFile, stories, tempDir } from './helpers.ts';

const pools: InferencePool[] = [];
after(() => Promise.all(pools.map((p) => p.close())));

/** Both evaluators on one model, pool and cache folder; runs of 5 windows, so runs mix masks in the gated graph. */
async function evaluators(model: LoadedModel, granularity: Granularity, trieCacheBytes = 2 ** 30) {
  const pool = new InferencePool({ config: cpuConfig({ maxBatchTokens: 5 * 64, trieCacheBytes }) });
  pools.push(pool);
  const options = { pool, model, layout: discoverLayers(model.proto), granularity, cacheDir: tempDir() };
  return { gated: await OnnxEvaluator.create(options), trie: await TrieEvaluator.create(options) };
}

/**
 * A batch as a search makes them: masks that share long prefixes (one parent's children differing late), some
 * sharing only the first unit, one sharing nothing, the dense and the empty mask, and a duplicate.
 */
function batch(units: number): string[] {
  let seed = 11;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const parent = Array.from({ length: units }, (_, u) => (u % 3 === 1 ? '0' : '1')).join('');
  const flip = (mask: string, u: number) =>
    mask.slice(0, u) + (mask[u] === '1' ? '0' : '1') + mask.slice(u + 1);
  const masks = [parent, flip(parent, units - 1), flip(parent, units - 2), flip(flip(parent, 0), units - 1)];
  for (let i = 0; i < 5; i++)
    masks.push(Array.from({ length: units }, () => (random() < 0.7 ? '1' : '0')).join(''));
  masks.push('1'.repeat(units), '0'.repeat(units), masks[1]!);
  return masks;
}

const windows = stories(64, 13);
const clusterOf = Array.from({ length: windows.count }, (_, w) => w % 3);

const cases: { name: string; model: () => LoadedModel; granularity: Granularity }[] = [
  {
    name: 'stories-deep16 (llama2.c), layers',
    model: () => modelFile('stories-deep16/stories-deep16.bin'),
    granularity: 'layer',
  },
  {
    name: 'stories-deep16 (llama2.c), sub-blocks',
    model: () => modelFile('stories-deep16/stories-deep16.bin'),
    granularity: 'sublayer',
  },
  {
    name: 'hf-zoo llama (TorchScript), sub-blocks',
    model: () => readModel(resolveDataFile('hf-zoo/llama/model.ts.onnx')),
    granularity: 'sublayer',
  },
  {
    name: 'hf-zoo gpt2 (TorchScript), layers',
    model: () => readModel(resolveDataFile('hf-zoo/gpt2/model.ts.onnx')),
    granularity: 'layer',
  },
  // Parallel attention + MLP, and a final norm onnxruntime fuses with the last residual Add.
  {
    name: 'hf-zoo gptneox (dynamo), sub-blocks',
    model: () => readModel(resolveDataFile('hf-zoo/gptneox/model.dynamo.onnx')),
    granularity: 'sublayer',
  },
];

for (const { name, model, granularity } of cases)
  test(`the trie evaluator gives the gated graph's NLL to the last bit: ${name}`, async () => {
    const { gated, trie } = await evaluators(model(), granularity);
    const masks = batch(trie.units);
    const expected = await gated.evaluate(masks, windows, { clusterOf });
    const actual = await trie.evaluate(masks, windows, { clusterOf });
    assert.deepEqual(actual, expected);
    assert.ok(new Set(expected.map((r) => r.nllSum)).size >= masks.length - 1, 'the masks score differently');
  });

test('a cache budget too small for any hidden state (every branch recomputed) gives the same numbers', async () => {
  const model = modelFile('stories-deep16/stories-deep16.bin');
  const { gated, trie } = await evaluators(model, 'layer', 1);
  const masks = batch(trie.units);
  assert.deepEqual(
    await trie.evaluate(masks, windows, { clusterOf }),
    await gated.evaluate(masks, windows, { clusterOf }),
  );
});

test('states kept from one batch spare the next the prefixes it shares, with the same numbers', async () => {
  const model = modelFile('stories-deep16/stories-deep16.bin');
  const { trie } = await evaluators(model, 'layer');
  const parents = batch(trie.units);
  await trie.evaluate(parents, windows);
  // The next generation: each parent with one of its last four units flipped.
  const children = parents.map((mask, i) => {
    const u = trie.units - 1 - (i % 4);
    return mask.slice(0, u) + (mask[u] === '1' ? '0' : '1') + mask.slice(u + 1);
  });
  const runs = (e: TrieEvaluator) => e.unitRuns.kept + e.unitRuns.pruned;
  const before = runs(trie);
  const warm = await trie.evaluate(children, windows, { clusterOf });
  const warmRuns = runs(trie) - before;
  const { trie: fresh } = await evaluators(model, 'layer');
  assert.deepEqual(warm, await fresh.evaluate(children, windows, { clusterOf }));
  // A child shares its first 12 units with its parent, whose path kept its state at depth 8 (no chain crosses a
  // multiple of its length) or deeper: each child runs at most its last 8 units, per run of 5 windows.
  const perRun = new Set(children).size * Math.ceil(windows.count / 5);
  assert.ok(warmRuns <= perRun * 8, `${warmRuns} unit runs after the parents, ${runs(fresh)} without`);
  assert.ok(runs(fresh) > perRun * 8, 'without the parents’ states, more');
  // Stretches with no branch point ran as chains, one session each.
  assert.ok(
    fresh.sessionRuns < runs(fresh) / 2,
    `${fresh.sessionRuns} sessions for ${runs(fresh)} unit runs`,
  );
  // The same masks on other windows share nothing with them.
  const other = stories(64, 20).select([13, 14, 15, 16, 17, 18, 19]);
  const { trie: elsewhere } = await evaluators(model, 'layer');
  assert.deepEqual(await trie.evaluate(children, other), await elsewhere.evaluate(children, other));
  // Measured again on the same windows: each mask from its deepest kept state again (a leaf's is not kept).
  const again = runs(trie);
  await trie.evaluate(children, windows);
  assert.ok(runs(trie) - again <= perRun * 8);
});

test('EVOP_EVALUATOR=trie gives the search the trie evaluator on float32 models, the gated graph on float16 ones', async () => {
  const pool = new InferencePool({ config: cpuConfig({ evaluator: 'trie' }) });
  pools.push(pool);
  const forSearch = async (model: LoadedModel) => {
    const layout = discoverLayers(model.proto);
    const onnx = await OnnxEvaluator.create({
      pool,
      model,
      layout,
      granularity: 'layer',
      cacheDir: tempDir(),
    });
    return { onnx, scorer: await onnx.forSearch(), layout };
  };
  const fp32 = await forSearch(readModel(resolveDataFile('hf-zoo/qwen2/model.ts.onnx')));
  assert.ok(fp32.scorer instanceof TrieEvaluator);
  const masks = ['110111', '111101', '110101'];
  assert.deepEqual(await fp32.scorer.evaluate(masks, windows), await fp32.onnx.evaluate(masks, windows));
  const fp16 = await forSearch(readModel(resolveDataFile('hf-zoo/qwen2/model.ts-past-fp16.onnx')));
  assert.equal(fp16.layout.streamType, DataType.FLOAT16);
  assert.equal(fp16.scorer, fp16.onnx);
});

test('masks of the wrong length are refused', async () => {
  const { trie } = await evaluators(modelFile('stories-deep16/stories-deep16.bin'), 'layer');
  await assert.rejects(trie.evaluate(['0101'], windows), /mask '0101' is not 16 bits of 0\/1/);
});

test('EVOP_EVALUATOR takes gated or trie, and says so', () => {
  assert.equal(runtimeConfig({}).evaluator, 'gated');
  assert.equal(
    runtimeConfig({ EVOP_EVALUATOR: 'trie', EVOP_TRIE_CACHE_MB: '64' }).trieCacheBytes,
    64 * 2 ** 20,
  );
  assert.throws(() => runtimeConfig({ EVOP_EVALUATOR: 'fast' }), /EVOP_EVALUATOR="fast" is invalid/);
});
