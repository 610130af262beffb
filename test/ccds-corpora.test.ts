import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { selectCalibration } from '@evop/core';
import { Llama2cTokenizer, readCorpus, TokenWindows, windowsFromDocuments } from '@evop/data';
import { discoverLayers, llama2cToOnnx, readLlama2cCheckpoint, readModel, writeModel } from '@evop/onnx';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';

test('CCDS on stories260K pooled states separates TinyStories from WikiText and covers every cluster', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'evop-ccds-'));
  writeModel(
    llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile('stories260K/stories260K.bin'))),
    join(dir, 'model.onnx'),
  );
  const model = readModel(join(dir, 'model.onnx'));
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));
  const corpora = [
    'tinystories-valid-sample/tinystories_val.txt',
    'wikitext-2-raw-test/wikitext-2-raw-v1-test.txt',
  ];
  const parts = corpora.map((file) =>
    windowsFromDocuments(readCorpus(resolveDataFile(file)), tokenizer, 128, 64),
  );
  const pool = new TokenWindows(128, Int32Array.from([...parts[0]!.tokens, ...parts[1]!.tokens]));
  const corpusOf = (i: number) => (i < parts[0]!.count ? 0 : 1);

  const inference = new InferencePool({ config: runtimeConfig({ EVOP_PROVIDER: 'cpu' }) });
  try {
    const evaluator = await OnnxEvaluator.create({
      pool: inference,
      model,
      layout: discoverLayers(model.proto),
      granularity: 'layer',
      cacheDir: dir,
    });
    const states = await evaluator.pooledStates(pool);
    const set = selectCalibration({ states, dim: 64, calibration: 32, heldOut: 32, clusters: 8, seed: 0 });

    // Purity: the share of windows whose cluster's majority corpus is their own.
    let agree = 0;
    for (let c = 0; c < 8; c++) {
      const members = set.assignments.flatMap((a, i) => (a === c ? [corpusOf(i)] : []));
      const wiki = members.filter((x) => x === 1).length;
      agree += Math.max(wiki, members.length - wiki);
    }
    const purity = agree / pool.count;
    t.diagnostic(
      `CCDS purity over TinyStories + WikiText: ${purity.toFixed(3)}; cluster sizes ${set.clusterSizes.join(', ')}`,
    );
    assert.ok(purity >= 0.95, `purity ${purity}`);
    assert.deepEqual(
      new Set(set.calibrationClusters).size,
      8,
      'the calibration set has windows of every cluster',
    );
    assert.ok(
      set.calibration.some((i) => corpusOf(i) === 0) && set.calibration.some((i) => corpusOf(i) === 1),
    );
  } finally {
    await inference.close();
  }
});
