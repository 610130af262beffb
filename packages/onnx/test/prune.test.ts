import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { Llama2cTokenizer } from '@evop/data';
import { discoverLayers, MaskError, pruneModel, readModel, unitsOf, writeModel } from '../src/index.ts';
import { builtModel, DEEP16, greedy, HFSTYLE, STORIES260K, session, tempDir } from './helpers.ts';

test('the pruned file shrinks by the pruned units’ parameter bytes and records what was pruned', () => {
  const dir = tempDir();
  const model = builtModel(DEEP16);
  const layout = discoverLayers(model);
  const mask = '1110111011101110';
  const pruned = pruneModel(model, layout, mask, {
    granularity: 'layer',
    sourceSha256: 'abc123',
    expectedPruned: 4,
  });
  writeModel(model, join(dir, 'dense.onnx'));
  writeModel(pruned, join(dir, 'pruned.onnx'));
  const saved = statSync(join(dir, 'dense.onnx')).size - statSync(join(dir, 'pruned.onnx')).size;
  const units = unitsOf(layout, 'layer');
  const removed = units.filter((_, i) => mask[i] === '0').reduce((n, u) => n + u.paramBytes, 0);
  assert.equal(removed, 4 * 4 * (2 * 128 + 2 * 128 * 128 + 2 * 64 * 128 + 3 * 352 * 128));
  // Beyond the weights, only the removed nodes' protobuf (names, shape constants) goes: under 3 % more.
  assert.ok(
    saved >= removed && saved < removed * 1.03,
    `saved ${saved} bytes for ${removed} parameter bytes`,
  );

  const meta = Object.fromEntries(
    readModel(join(dir, 'pruned.onnx')).proto.metadataProps.map((p) => [p.key, p.value]),
  );
  assert.equal(meta['evop.mask'], mask);
  assert.equal(meta['evop.granularity'], 'layer');
  assert.equal(meta['evop.source_sha256'], 'abc123');
  assert.equal(meta['evop.kv_layers'], '12');
  const recorded = JSON.parse(meta['evop.units']!) as { id: string; kept: boolean }[];
  assert.deepEqual(
    recorded.filter((u) => !u.kept).map((u) => u.id),
    ['layer3', 'layer7', 'layer11', 'layer15'],
  );
});

test('KV-cache inputs and outputs of removed attention are dropped and the rest renumbered', () => {
  const model = readModel(resolveDataFile(HFSTYLE)).proto;
  // attn0 and attn3 pruned, all MLPs kept.
  const pruned = pruneModel(model, discoverLayers(model), '0111110111', {
    granularity: 'sublayer',
    sourceSha256: 'x',
  });
  const names = (list: { name: string }[]) => list.map((v) => v.name);
  assert.deepEqual(names(pruned.graph.input), [
    'input_ids',
    'attention_mask',
    'position_ids',
    ...[0, 1, 2].flatMap((l) => [`past_key_values.${l}.key`, `past_key_values.${l}.value`]),
  ]);
  assert.deepEqual(names(pruned.graph.output), [
    'logits',
    ...[0, 1, 2].flatMap((l) => [`present.${l}.key`, `present.${l}.value`]),
  ]);
  const layout = discoverLayers(pruned);
  assert.deepEqual(
    layout.blocks.map((b) => `${b.kind}${b.layer}`),
    ['mlp0', 'attn1', 'mlp1', 'attn2', 'mlp2', 'mlp3', 'attn4', 'mlp4'],
    'the pruned model is still a decoder evop can read',
  );
});

test('a pruned model with a KV cache decodes greedily to the same tokens with and without the cache', async () => {
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));
  const prompt = tokenizer.encode('Once upon a time, there was a dog');
  const cases = [
    [readModel(resolveDataFile(HFSTYLE)).proto, 'sublayer', '0111110111'],
    [builtModel(DEEP16), 'layer', '1101111011110111'],
    [builtModel(STORIES260K), 'sublayer', '1110111101'],
  ] as const;
  for (const [model, granularity, mask] of cases) {
    const pruned = pruneModel(model, discoverLayers(model), mask, { granularity, sourceSha256: 'x' });
    const sess = await session(pruned);
    const layout = discoverLayers(pruned);
    const cached = await greedy(sess, layout, prompt, 30, true);
    assert.deepEqual(cached, await greedy(sess, layout, prompt, 30, false), mask);
    assert.ok(tokenizer.decode(cached).length > 40);
  }
});

test('a mask of the wrong length, alphabet or count is refused with a MaskError and nothing is written', () => {
  const model = builtModel(STORIES260K);
  const layout = discoverLayers(model);
  const dir = tempDir();
  const cases: [string, number | undefined, RegExp][] = [
    ['1011', undefined, /has 4 bits; the model has 5 units/],
    ['10x11', undefined, /'x' at position 2/],
    ['10011', 1, /prunes 2 units; the target is 1/],
  ];
  for (const [mask, expectedPruned, message] of cases) {
    assert.throws(
      () => {
        const pruned = pruneModel(model, layout, mask, {
          granularity: 'layer',
          sourceSha256: 'x',
          expectedPruned,
        });
        writeModel(pruned, join(dir, 'pruned.onnx'));
      },
      (err: unknown) => err instanceof MaskError && message.test(err.message),
      mask,
    );
  }
  assert.throws(
    () => pruneModel(model, layout, '1'.repeat(5), { granularity: 'sublayer', sourceSha256: 'x' }),
    MaskError,
  );
  assert.deepEqual(readdirSync(dir), []);
});
