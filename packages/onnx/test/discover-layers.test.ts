import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { GraphBuilder, valueInfo } from '../src/graph-builder.ts';
import { discoverLayers, ModelError, type ModelProto, readModel, unitsOf } from '../src/index.ts';
import { DataType, make } from '../src/proto.ts';
import { floatTensor } from '../src/tensor.ts';
import { builtModel, DEEP16, HFSTYLE, STORIES260K } from './helpers.ts';

/** Per-layer parameters of a llama2.c model, from its header: attention norm + q, k, v, o; MLP norm + w1, w2, w3. */
function expectedParams(dim: number, hidden: number, heads: number, kvHeads: number) {
  const kvDim = (dim / heads) * kvHeads;
  return { attn: dim + 2 * dim * dim + 2 * kvDim * dim, mlp: dim + 3 * hidden * dim };
}

test('finds every layer, its residual stream, KV cache and parameters in models built from llama2.c', () => {
  for (const [file, L, dim, hidden] of [
    [STORIES260K, 5, 64, 172],
    [DEEP16, 16, 128, 352],
  ] as const) {
    const layout = discoverLayers(builtModel(file));
    const want = expectedParams(dim, hidden, 8, 4);
    assert.equal(layout.layers, L);
    assert.deepEqual(
      layout.blocks.map((b) => `${b.kind}${b.layer}`),
      Array.from({ length: L }, (_, l) => [`attn${l}`, `mlp${l}`]).flat(),
    );
    layout.blocks.forEach((b, i) => {
      assert.equal(b.params, want[b.kind], `${file} block ${i}`);
      assert.equal(b.paramBytes, 4 * want[b.kind]);
      if (i > 0)
        assert.equal(b.input, layout.blocks[i - 1]!.output, 'blocks chain along the residual stream');
      assert.deepEqual(
        b.pastInputs,
        b.kind === 'attn' ? [`past_key_values.${b.layer}.key`, `past_key_values.${b.layer}.value`] : [],
      );
      assert.deepEqual(
        b.presentOutputs,
        b.kind === 'attn' ? [`present.${b.layer}.key`, `present.${b.layer}.value`] : [],
      );
    });
    const embeddingAndNorm = 512 * dim + dim;
    assert.equal(
      layout.totalParams,
      L * (want.attn + want.mlp) + embeddingAndNorm,
      'tied classifier counted once',
    );
    assert.equal(layout.hiddenSize, dim);
    assert.equal(layout.vocabSize, 512);
    assert.equal(unitsOf(layout, 'layer').length, L);
    assert.deepEqual(
      unitsOf(layout, 'sublayer')
        .slice(0, 4)
        .map((u) => u.id),
      ['attn0', 'mlp0', 'attn1', 'mlp1'],
    );
  }
});

test('finds the same layers in an unmodified TorchScript export with opaque weight names', () => {
  const layout = discoverLayers(readModel(resolveDataFile(HFSTYLE)).proto);
  const want = expectedParams(64, 172, 8, 4);
  assert.equal(layout.layers, 5);
  assert.deepEqual(
    layout.blocks.map((b) => [b.kind, b.layer, b.params]),
    Array.from({ length: 5 }, (_, l) => [
      ['attn', l, want.attn],
      ['mlp', l, want.mlp],
    ]).flat(),
  );
  assert.deepEqual(layout.blocks[4]!.pastInputs, ['past_key_values.2.key', 'past_key_values.2.value']);
  assert.equal(layout.finalStream, '/model/layers.4/Add_1_output_0');
  assert.deepEqual(layout.inputs.find((i) => i.name === 'past_key_values.0.key')?.shape, [
    'batch_size',
    4,
    'past_sequence_length',
    8,
  ]);
});

test('fused exports are refused naming the fused operator and how to export a supported model', () => {
  for (const [file, op] of [
    ['onnx-genai-tiny-random-llama-fp16/model.onnx', 'com.microsoft.SkipSimplifiedLayerNormalization'],
    ['onnx-ort-tiny-random-gpt2-fused/past.onnx', 'com.microsoft.SkipLayerNormalization'],
  ]) {
    assert.throws(
      () => discoverLayers(readModel(resolveDataFile(file!)).proto),
      (err: unknown) =>
        err instanceof ModelError &&
        err.code === 'fused-operator' &&
        err.message.includes(op!) &&
        err.message.includes('optimum-cli export onnx'),
      file,
    );
  }
});

/** A tiny graph: input_ids → Gather(embedding) → `body` → logits. */
function tinyModel(body: (b: GraphBuilder, x: string) => string, inputs = ['input_ids']): ModelProto {
  const graph = make.graph({ name: 'tiny' });
  const b = new GraphBuilder(graph, 17);
  for (const name of inputs) graph.input.push(valueInfo(name, DataType.INT64, ['B', 'T']));
  const emb = b.initializer(floatTensor('emb', [8, 4], new Float32Array(32).fill(0.5)));
  const x = inputs.includes('input_ids') ? b.op('/model', 'Gather', [emb, 'input_ids']) : emb;
  b.op('/lm_head', 'Identity', [body(b, x)], {}, 'logits');
  graph.output.push(valueInfo('logits', DataType.FLOAT, ['B', 'T', 4]));
  return make.model({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
}

test('graphs that are not decoders, or whose pattern is unknown, get a typed error saying why', () => {
  const weight = (b: GraphBuilder) =>
    b.initializer(floatTensor(`w${Math.random()}`, [4, 4], new Float32Array(16)));
  const residual = (b: GraphBuilder, x: string, scope = '/m') =>
    b.op(scope, 'Add', [x, b.op(scope, 'MatMul', [x, weight(b)])]);
  const cases: [string, ModelProto, string, RegExp][] = [
    [
      'single MatMul',
      tinyModel((b, x) => b.op('/m', 'MatMul', [x, weight(b)]), ['x']),
      'not-decoder',
      /no 'input_ids' input/,
    ],
    [
      'no residual',
      tinyModel((b, x) => b.op('/m', 'MatMul', [x, weight(b)])),
      'not-decoder',
      /no residual Add follows/,
    ],
    [
      'branch without weights',
      tinyModel((b, x) => b.op('/m', 'Add', [x, b.op('/m', 'Relu', [x])])),
      'not-decoder',
      /no residual Add follows/,
    ],
    [
      'a norm on the stream between blocks (post-norm)',
      tinyModel((b, x) => residual(b, b.op('/m', 'LayerNormalization', [residual(b, x), weight(b)]))),
      'unknown-pattern',
      /LayerNormalization .* changes the residual stream between two residual blocks/,
    ],
    [
      'attention outside any residual block',
      tinyModel((b, x) => {
        const scores = b.op('/m', 'MatMul', [x, b.op('/m', 'Transpose', [x], { perm: [0, 2, 1] })]);
        return residual(b, b.op('/m', 'MatMul', [scores, x]));
      }),
      'unknown-pattern',
      /mixes positions outside any residual block/,
    ],
    [
      'fewer layers on the stream than the module names show',
      tinyModel((b, x) =>
        b.op('/model/layers.1/mlp', 'MatMul', [residual(b, x, '/model/layers.0/mlp'), weight(b)]),
      ),
      'unknown-pattern',
      /found 1 decoder layer on the residual stream, but the graph's module names show 2/,
    ],
    [
      'an input that is neither fed nor a KV cache',
      tinyModel((b, x) => residual(b, b.op('/m', 'Add', [x, 'scale'])), ['input_ids', 'scale']),
      'unknown-pattern',
      /input 'scale' is neither one evop feeds \(input_ids, attention_mask, position_ids, cache_position, token_type_ids\) nor a KV cache/,
    ],
  ];
  for (const [name, model, code, message] of cases) {
    assert.throws(
      () => discoverLayers(model),
      (err: unknown) => err instanceof ModelError && err.code === code && message.test(err.message),
      name,
    );
  }
});
