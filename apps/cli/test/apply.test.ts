import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { discoverLayers, halfToFloat, type MaskFile, readModel } from '@evop/onnx';
import { decoderFeeds } from '@evop/runtime';
import * as ort from 'onnxruntime-node';
import { data, evop, tempDir } from './helpers.ts';

const zoo = (file: string) => resolveDataFile(`hf-zoo/${file}`);

/** The model's logits for one sequence of TinyStories-like token ids, as float32 whatever the model's dtype. */
async function logitsOf(path: string): Promise<Float32Array> {
  const layout = discoverLayers(readModel(path).proto);
  const ids = Array.from({ length: 24 }, (_, t) => 3 + ((t * 37) % 500));
  const feeds = decoderFeeds(layout, { ids, rows: 1, seqLen: ids.length });
  const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  const out = await session.run(
    Object.fromEntries(
      Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor(v.type, v.data as Float32Array, v.dims)]),
    ),
  );
  const logits = out[layout.logits]!;
  return logits.type === 'float16' ? halfToFloat(logits.data as Uint16Array) : (logits.data as Float32Array);
}

test('a mask searched on the fp32 export applies to the fp16 KV-cache export and gives the same model', async () => {
  const searched = tempDir();
  const prune = await evop([
    'prune',
    ...['--model', zoo('llama/model.ts.onnx'), '--tokenizer', zoo('tokenizer.json'), '--data', data.stories],
    ...['--remove', '3', '--granularity', 'sublayer', '--strategy', 'blockpruner'],
    ...['--calibration', '8', '--held-out', '8', '--seq-len', '64', '--out', searched, '--quiet'],
  ]);
  assert.equal(prune.code, 0, prune.stderr);
  const shipped = tempDir();
  const apply = await evop([
    'apply',
    zoo('llama/model.ts-past-fp16.onnx'),
    ...['--mask', join(searched, 'mask.json'), '--out', shipped],
  ]);
  assert.equal(apply.code, 0, apply.stderr);
  const found = JSON.parse(readFileSync(join(searched, 'mask.json'), 'utf8')) as MaskFile;
  assert.match(apply.stdout, new RegExp(`removed ${found.pruned.join(', ')}`));
  const applied = JSON.parse(readFileSync(join(shipped, 'mask.json'), 'utf8')) as MaskFile;
  assert.equal(applied.mask, found.mask);
  assert.notEqual(applied.source!.sha256, found.source!.sha256, 'another file of the same model');
  // The fp16 model pruned by the mask computes what the fp32 model pruned by the search does, to fp16 precision.
  const [half, full] = await Promise.all([
    logitsOf(join(shipped, 'model.onnx')),
    logitsOf(join(searched, 'model.onnx')),
  ]);
  const worst = half.reduce((m, v, i) => Math.max(m, Math.abs(v - full[i]!)), 0);
  assert.ok(worst <= 2e-2, `max |Δlogit| ${worst}`);
  const pruned = readModel(join(shipped, 'model.onnx')).proto;
  const kept = discoverLayers(pruned).blocks.filter((b) => b.kind === 'attn').length;
  assert.equal(
    pruned.graph.input.filter((i) => i.name.startsWith('past_key_values')).length,
    2 * kept,
    'the KV cache of removed attention is gone',
  );
});

test('apply takes bits too, and refuses a mask that does not fit the model, saying why', async () => {
  const out = tempDir();
  const bits = await evop(['apply', zoo('qwen2/model.dynamo.onnx'), '--mask', '110111', '--out', out]);
  assert.equal(bits.code, 0, bits.stderr);
  assert.match(bits.stdout, /removed layer2:/);

  const llama = tempDir();
  const json = await evop([
    'apply',
    zoo('llama/model.ts.onnx'),
    '--mask',
    '011111',
    '--out',
    llama,
    '--json',
  ]);
  assert.equal(json.code, 0, json.stderr);
  const summary = JSON.parse(json.stdout);
  assert.deepEqual(summary.pruned, ['layer0']);
  assert.ok(summary.params.after < summary.params.before);
  assert.equal(summary.files[0], join(llama, 'model.onnx'));
  const cases: [string[], RegExp][] = [
    [
      ['apply', zoo('qwen2/model.ts.onnx'), '--mask', join(llama, 'mask.json')],
      /the mask was found on another model: its unit attn0 is 12352 parameters, this model's is 12480/,
    ],
    [
      ['apply', zoo('qwen2/model.ts.onnx'), '--mask', '10101'],
      /--mask: 5 bits, but the model has 6 layers and 12 sub-blocks/,
    ],
    [
      ['apply', resolveDataFile('stories260K-onnx-hfstyle/model.onnx'), '--mask', join(llama, 'mask.json')],
      /mask '011111' has 6 bits; the model has 5 units/,
    ],
    [
      ['apply', zoo('qwen2/model.ts.onnx'), '--mask', '11x111'],
      /--mask: '11x111' is neither a file nor bits/,
    ],
    [['apply', zoo('qwen2/model.ts.onnx')], /--mask: give the mask/],
  ];
  for (const [args, message] of cases) {
    const r = await evop([...args, '--out', tempDir()]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  }
});
