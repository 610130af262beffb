import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { discoverLayers } from '@evop/onnx';
import * as ort from 'onnxruntime-node';
import { decoderFeeds, type InferencePool, type OnnxEvaluator } from '../src/index.ts';
import { toOrt } from '../src/wire-tensor.ts';
import { cpuConfig, evaluatorFor, modelFile, stories } from './helpers.ts';

const pools: InferencePool[] = [];
after(() => Promise.all(pools.map((p) => p.close())));
async function make(...args: Parameters<typeof evaluatorFor>) {
  const made = await evaluatorFor(...args);
  pools.push(made.pool);
  return made.evaluator;
}

/** Σ next-token NLL over windows from the plain model's logits, in float64: the independent reference. */
async function referenceNll(modelPath: string, windows: ReturnType<typeof stories>) {
  const layout = discoverLayers(modelFile('stories260K/stories260K.bin').proto);
  const session = await ort.InferenceSession.create(modelPath, { logSeverityLevel: 3 });
  let nll = 0;
  let count = 0;
  for (let w = 0; w < windows.count; w++) {
    const ids = Array.from(windows.window(w));
    const feeds = Object.fromEntries(
      Object.entries(decoderFeeds(layout, { ids, rows: 1, seqLen: ids.length })).map(([k, v]) => [
        k,
        toOrt(v),
      ]),
    );
    const logits = (await session.run(feeds)).logits!.data as Float32Array;
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = logits.subarray(t * 512, (t + 1) * 512);
      const max = Math.max(...row);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      nll += max + Math.log(sum) - row[ids[t + 1]!]!;
      count++;
    }
  }
  return { nll, count };
}

test('perplexity of stories260K on TinyStories equals an independent computation from the logits', async () => {
  const windows = stories(128, 24);
  const evaluator = await make('stories260K/stories260K.bin');
  const [dense] = await evaluator.evaluate([evaluator.allKept], windows);
  const ref = await referenceNll(modelFile('stories260K/stories260K.bin').path, windows);
  assert.equal(dense!.count, ref.count);
  assert.equal(dense!.count, 24 * 127);
  const ours = Math.exp(dense!.nllSum / dense!.count);
  const theirs = Math.exp(ref.nll / ref.count);
  assert.ok(Math.abs(ours - theirs) / theirs <= 1e-5, `${ours} vs ${theirs}`);
});

test('the documented held-out perplexity of stories260K is reproduced (390 windows × 256 tokens)', async () => {
  const evaluator = await make('stories260K/stories260K.bin');
  const ppl = await evaluator.perplexity(stories(256, 390));
  assert.equal(ppl.toFixed(4), '4.6415');
});

test('numbers do not depend on batch size or thread count', async () => {
  const windows = stories(64, 12);
  const masks = ['11111', '10111', '11010'];
  const configs = [
    cpuConfig({ evalThreads: 1, intraOpThreads: 2, maxBatchTokens: 64 }),
    cpuConfig({ evalThreads: 2, intraOpThreads: 1, maxBatchTokens: 256 }),
    cpuConfig({ evalThreads: 1, intraOpThreads: 1, maxBatchTokens: 100_000 }),
  ];
  const results: Awaited<ReturnType<OnnxEvaluator['evaluate']>>[] = [];
  for (const config of configs)
    results.push(await (await make('stories260K/stories260K.bin', config)).evaluate(masks, windows));
  for (const r of results.slice(1))
    r.forEach((m, i) => {
      assert.equal(m.count, results[0]![i]!.count);
      assert.ok(Math.abs(m.nllSum - results[0]![i]!.nllSum) / results[0]![i]!.nllSum <= 1e-5, `${m.mask}`);
    });
  assert.ok(results[0]![1]!.nllSum > results[0]![0]!.nllSum, 'pruning a layer costs likelihood');
});

test('per-cluster sums add up to the totals', async () => {
  const windows = stories(64, 10);
  const evaluator = await make('stories260K/stories260K.bin');
  const clusterOf = [0, 1, 2, 0, 1, 2, 0, 1, 2, 2];
  const [r] = await evaluator.evaluate(['11011'], windows, { clusterOf });
  assert.equal(r!.clusters!.length, 3);
  assert.deepEqual(
    r!.clusters!.map((c) => c.count),
    [3 * 63, 3 * 63, 4 * 63],
  );
  const sum = r!.clusters!.reduce((s, c) => s + c.nllSum, 0);
  assert.ok(Math.abs(sum - r!.nllSum) <= 1e-9 * r!.nllSum);
});

test('the event loop stays responsive while a long evaluation runs', async () => {
  const evaluator = await make(
    'stories-deep16/stories-deep16.bin',
    cpuConfig({ evalThreads: 1, intraOpThreads: 2 }),
  );
  const windows = stories(256, 16);
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 20);
  const start = performance.now();
  await evaluator.evaluate(['1'.repeat(16), '0111111111111110'], windows);
  const elapsed = performance.now() - start;
  clearInterval(timer);
  // Inference blocking this thread would show as one gap as long as the evaluation itself.
  assert.ok(elapsed > 500, `evaluation took ${elapsed} ms, too short to tell`);
  assert.ok(maxGap < elapsed / 4, `timer gap ${maxGap} ms during a ${elapsed} ms evaluation`);
  assert.ok(ticks >= elapsed / 20 / 4, `${ticks} ticks in ${elapsed} ms`);
});

test('unit cosines and pooled states come back for every window and unit', async () => {
  const evaluator = await make('stories260K/stories260K.bin');
  const windows = stories(64, 6);
  const pooled = await evaluator.pooledStates(windows);
  assert.equal(pooled.length, 6 * 64);
  assert.ok(pooled.every(Number.isFinite));
  const cos = await evaluator.unitCosines(windows);
  assert.equal(cos.length, 5);
  for (const c of cos) assert.ok(c > -1 && c < 1);
});
