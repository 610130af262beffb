import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { readTask, TASKS } from '@evop/data';
import { discoverLayers } from '@evop/onnx';
import * as ort from 'onnxruntime-node';
import { decoderFeeds, type InferencePool, scoreMultipleChoice } from '../src/index.ts';
import { toOrt } from '../src/wire-tensor.ts';
import { evaluatorFor, modelFile, tokenizer } from './helpers.ts';

const pools: InferencePool[] = [];
after(() => Promise.all(pools.map((p) => p.close())));

/** Log-likelihood of ids[from…] computed directly from the plain model's logits. */
async function directLogLikelihood(
  session: ort.InferenceSession,
  ids: number[],
  from: number,
): Promise<number> {
  const layout = discoverLayers(modelFile('stories260K/stories260K.bin').proto);
  const feeds = Object.fromEntries(
    Object.entries(decoderFeeds(layout, { ids, rows: 1, seqLen: ids.length })).map(([k, v]) => [k, toOrt(v)]),
  );
  const logits = (await session.run(feeds)).logits!.data as Float32Array;
  let ll = 0;
  for (let t = from; t < ids.length; t++) {
    const row = logits.subarray((t - 1) * 512, t * 512);
    const max = Math.max(...row);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    ll += row[ids[t]!]! - max - Math.log(sum);
  }
  return ll;
}

test('multiple-choice scores match a direct computation, item by item, for every task format', async () => {
  const { evaluator, pool } = await evaluatorFor('stories260K/stories260K.bin');
  pools.push(pool);
  const session = await ort.InferenceSession.create(modelFile('stories260K/stories260K.bin').path, {
    logSeverityLevel: 3,
  });
  const tok = tokenizer();
  for (const task of ['arc-easy', 'winogrande', 'boolq', 'hellaswag'] as const) {
    const items = readTask(task, resolveDataFile(TASKS[task]), { limit: 3 });
    const result = await scoreMultipleChoice(evaluator, tok, items);
    assert.equal(result.n, 3);
    for (const [i, item] of items.entries()) {
      const r = result.items[i]!;
      assert.equal(r.logLikelihoods.length, item.choices.length);
      for (const [c, { context, continuation }] of item.choices.entries()) {
        const whole = tok.encode(context + continuation);
        const direct = await directLogLikelihood(session, whole, tok.encode(context).length);
        assert.ok(
          Math.abs(r.logLikelihoods[c]! - direct) <= 1e-3,
          `${task} item ${i} choice ${c}: ${r.logLikelihoods[c]} vs ${direct}`,
        );
      }
      assert.equal(r.chosen, r.logLikelihoods.indexOf(Math.max(...r.logLikelihoods)));
    }
    const correct = result.items.filter((r) => r.chosen === r.gold).length;
    assert.equal(result.acc, correct / 3);
    assert.ok(Math.abs(result.accStderr - Math.sqrt((result.acc * (1 - result.acc)) / 2)) < 1e-12);
  }
});
