import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import type { Estimate, LatencyComparison, LatencyResult } from '@evop/runtime';
import { data, evop, tempDir } from './helpers.ts';

const hfStyle = resolveDataFile('stories260K-onnx-hfstyle/model.onnx');
const quick = ['--seq-len', '32', '--decode-tokens', '8', '--max-seconds', '1'];
const interval = String.raw`[\d.]+ \[[\d.]+, [\d.]+\]`;
const ratio = String.raw`\d+\.\d+`;
/** A phase's line: dense and pruned tokens/s with intervals, then a speedup with its interval, or no claim. */
const comparedLine = (phase: string) =>
  new RegExp(
    `${phase} \\(\\d+ tokens\\): dense ${interval}, pruned ${interval}; ` +
      `(×${ratio} \\[${ratio}, ${ratio}\\], (faster|slower)|inconclusive: ratio \\[${ratio}, ${ratio}\\] spans 1) ` +
      String.raw`\(\d+ rounds`,
  );

function assertEstimate(e: Estimate, what: string): void {
  assert.ok(e.low > 0 && e.low <= e.median && e.median <= e.high, `${what}: ${JSON.stringify(e)}`);
}

test('evop latency DENSE PRUNED: prefill and decode with intervals and a verdict, as text and as JSON', async () => {
  // The hfstyle export (KV cache) with its middle layer removed, as a user would make it.
  const out = tempDir();
  const apply = await evop(['apply', hfStyle, '--mask', '11011', '--out', out]);
  assert.equal(apply.code, 0, apply.stderr);
  const pruned = join(out, 'model.onnx');

  const text = await evop(['latency', hfStyle, pruned, ...quick]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /median \[95 % interval\], dense and pruned in alternating rounds/);
  assert.match(text.stdout, comparedLine('prefill'));
  assert.match(text.stdout, comparedLine('decode'));
  // No speedup or slowdown is printed without an interval that excludes 1.
  for (const line of text.stdout.split('\n').filter((l) => l.includes('inconclusive')))
    assert.doesNotMatch(line, /×/);

  const json = await evop(['latency', hfStyle, pruned, ...quick, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as LatencyComparison & { dense: string; pruned: string };
  assert.equal(result.pruned, pruned);
  assert.deepEqual(result.protocol, {
    seqLen: 32,
    decodeTokens: 8,
    warmup: 2,
    maxSeconds: 1,
    precision: 0.02,
    confidence: 0.95,
    batch: 1,
  });
  for (const phase of [result.prefill, result.decode!]) {
    assertEstimate(phase.ratio, 'ratio');
    assertEstimate(phase.dense, 'dense tokens/s');
    assertEstimate(phase.pruned, 'pruned tokens/s');
    const { low, high } = phase.ratio;
    assert.equal(phase.verdict, low > 1 ? 'faster' : high < 1 ? 'slower' : 'inconclusive');
    assert.ok(phase.rounds >= 12, `${phase.rounds} rounds: at least 6 pairs`);
  }
});

test('evop latency MODEL: one model, a llama2.c checkpoint or an export without a KV cache (prefill only)', async () => {
  const checkpoint = await evop(['latency', data.model, ...quick]);
  assert.equal(checkpoint.code, 0, checkpoint.stderr);
  assert.match(checkpoint.stdout, new RegExp(`prefill \\(32 tokens\\): ${interval} \\(\\d+ rounds`));
  assert.match(checkpoint.stdout, new RegExp(`decode \\(8 tokens\\): ${interval} \\(\\d+ rounds`));

  const noCache = await evop(['latency', resolveDataFile('hf-zoo/gpt2/model.ts.onnx'), ...quick, '--json']);
  assert.equal(noCache.code, 0, noCache.stderr);
  const result = JSON.parse(noCache.stdout) as LatencyResult;
  assertEstimate(result.prefill.tokensPerSecond, 'prefill tokens/s');
  assert.ok(result.prefill.rounds >= 6);
  assert.equal(result.decode, null);
});

test('evop latency refuses bad input in one line, exit 2', async () => {
  for (const [args, message] of [
    [['latency', 'missing.onnx'], /^evop: latency: no such file 'missing.onnx'\n$/],
    [['latency', data.model, '--max-seconds', '0'], /^evop: --max-seconds: expected a number > 0\n$/],
    [['latency', data.model, '--seq-len', 'many'], /--seq-len.*expected an integer/],
    [['latency', data.model, '--max-secs', '3'], /did you mean --max-seconds\?/],
  ] as const) {
    const run = await evop([...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
});
