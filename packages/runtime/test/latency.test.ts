import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { discoverLayers, pruneModel, readModel, writeModel } from '@evop/onnx';
import {
  compareLatency,
  type Estimate,
  InferencePool,
  measureLatency,
  type PhaseComparison,
  type TimedModel,
} from '../src/index.ts';
import { cpuConfig, modelFile, tempDir } from './helpers.ts';

const pool = new InferencePool({ config: cpuConfig() });
after(() => pool.close());

/** stories-deep16, and the same model with 4 of its 16 layers physically removed. */
function denseAndPruned(): [TimedModel, TimedModel] {
  const model = modelFile('stories-deep16/stories-deep16.bin');
  const layout = discoverLayers(model.proto);
  const path = join(tempDir(), 'pruned.onnx');
  const pruned = pruneModel(model.proto, layout, '1111011110111101', {
    granularity: 'layer',
    sourceSha256: model.sha256,
  });
  writeModel(pruned, path);
  return [
    { path: model.path, layout },
    { path, layout: discoverLayers(pruned) },
  ];
}

function assertEstimate(e: Estimate, what: string): void {
  assert.ok(e.low > 0 && Number.isFinite(e.high), `${what}: ${JSON.stringify(e)}`);
  assert.ok(e.low <= e.median && e.median <= e.high, `${what}: the median lies in its interval`);
}

/** What any comparison must satisfy, whatever the machine's timings were. */
function assertComparison(phase: PhaseComparison, maxSeconds: number, precision: number, what: string): void {
  for (const k of ['dense', 'pruned', 'ratio'] as const) assertEstimate(phase[k], `${what} ${k}`);
  const { low, high, median } = phase.ratio;
  assert.equal(phase.verdict, low > 1 ? 'faster' : high < 1 ? 'slower' : 'inconclusive', what);
  // Rounds come in A B B A pairs, at least 6 of them: the fewest that give a 95 % interval of the median.
  assert.ok(phase.rounds >= 12 && phase.rounds % 2 === 0, `${what}: ${phase.rounds} rounds`);
  if (phase.converged) assert.ok((high - low) / 2 <= precision * median, `${what}: converged means tight`);
  else assert.ok(phase.seconds >= maxSeconds, `${what}: stopped early only when tight`);
}

test('dense against pruned: tokens/s and the speed ratio of each phase with a 95 % interval and a verdict that follows it', async () => {
  const [dense, pruned] = denseAndPruned();
  const options = { seqLen: 32, decodeTokens: 8, maxSeconds: 1, precision: 0.02 };
  const result = await compareLatency(pool, dense, pruned, options);
  assertComparison(result.prefill, 1, 0.02, 'prefill');
  assert.ok(result.decode, 'both models have a KV cache');
  assertComparison(result.decode, 1, 0.02, 'decode');
  assert.deepEqual(result.protocol, { ...options, warmup: 2, confidence: 0.95, batch: 1 });
});

test('rounds stop once the interval is as tight as asked, and at the time cap when it never gets so', async () => {
  const [dense, pruned] = denseAndPruned();
  const settings = { seqLen: 16, decodeTokens: 4 };
  // Any interval is within ±1000 %: the fewest rounds that give one.
  const loose = await compareLatency(pool, dense, pruned, { ...settings, precision: 10 });
  for (const phase of [loose.prefill, loose.decode!]) {
    assert.equal(phase.converged, true);
    assert.equal(phase.rounds, 12);
  }
  const single = await measureLatency(pool, dense, { ...settings, precision: 10 });
  assert.equal(single.prefill.rounds, 6);
  assert.equal(single.decode!.rounds, 6);
  // No interval of distinct timings is within ±0 %: the cap stops the rounds.
  const capped = await compareLatency(pool, dense, pruned, { ...settings, precision: 0, maxSeconds: 0.5 });
  for (const phase of [capped.prefill, capped.decode!]) {
    assertComparison(phase, 0.5, 0, 'capped');
    assert.equal(phase.converged, false);
  }
});

test('a cancelled measurement stops between rounds with the signal’s reason', async () => {
  const [dense, pruned] = denseAndPruned();
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('job cancelled')), 300);
  const started = Date.now();
  await assert.rejects(
    compareLatency(pool, dense, pruned, { precision: 0, maxSeconds: 60, signal: controller.signal }),
    /job cancelled/,
  );
  assert.ok(Date.now() - started < 30_000, 'long before the time cap');
});

test('a model without a KV cache is timed in prefill only; an fp16 cache is fed and carried as fp16', async () => {
  const settings = { seqLen: 16, decodeTokens: 4, maxSeconds: 0.5 };
  const plain = readModel(resolveDataFile('hf-zoo/gpt2/model.ts.onnx'));
  const noCache = await measureLatency(
    pool,
    { path: plain.path, layout: discoverLayers(plain.proto) },
    settings,
  );
  assertEstimate(noCache.prefill.tokensPerSecond, 'prefill');
  assert.equal(noCache.decode, null);
  const half = readModel(resolveDataFile('hf-zoo/llama/model.ts-past-fp16.onnx'));
  const cached = await measureLatency(
    pool,
    { path: half.path, layout: discoverLayers(half.proto) },
    settings,
  );
  assert.ok(cached.decode);
  assertEstimate(cached.decode.tokensPerSecond, 'decode');
  // Compared with a model that has no cache, there is no decode to compare.
  const mixed = await compareLatency(
    pool,
    { path: half.path, layout: discoverLayers(half.proto) },
    { path: plain.path, layout: discoverLayers(plain.proto) },
    { ...settings, precision: 10 },
  );
  assert.equal(mixed.decode, null);
});
