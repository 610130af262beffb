import { GraphBuilder, valueInfo } from './graph-builder.ts';
import type { Llama2cCheckpoint } from './llama2c-checkpoint.ts';
import { DataType, type ModelProto, make } from './proto.ts';
import { floatTensor } from './tensor.ts';

const OPSET = 17;
const RMS_EPS = 1e-5;
const ROPE_THETA = 10000;

/** [out, in] row-major → [in, out], the layout MatMul(x, W) needs. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return t;
}

/**
 * Builds the ONNX decoder of a llama2.c checkpoint: the same maths as llama2.c's run.c (RMSNorm, interleaved-pair
 * RoPE, grouped-query causal attention, SwiGLU), with a KV cache and the interface and node names of a Hugging Face
 * / optimum export: inputs `input_ids`, `attention_mask` [B, past+T], `position_ids`, `past_key_values.N.{key,value}`
 * [B, kvHeads, past, headSize]; outputs `logits` and `present.N.{key,value}`.
 */
export function llama2cToOnnx(ckpt: Llama2cCheckpoint): ModelProto {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize } = ckpt.config;
  const hs = dim / nHeads;
  const kvDim = hs * nKvHeads;
  const rep = nHeads / nKvHeads;
  const graph = make.graph({ name: 'llama2c' });
  const b = new GraphBuilder(graph, OPSET);
  const F = DataType.FLOAT;
  graph.input.push(
    valueInfo('input_ids', DataType.INT64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', DataType.INT64, ['batch_size', 'sequence_length']),
  );
  const weight = (name: string, dims: number[], values: Float32Array) =>
    b.initializer(floatTensor(name, dims, values));

  const embedding = weight('model.embed_tokens.weight', [vocabSize, dim], ckpt.tokenEmbedding);
  let x = b.op('/model/embed_tokens', 'Gather', [embedding, 'input_ids']);

  // RoPE angles pos · θ^(-2j/hs), j < hs/2, as [B, T, 1, hs/2] to broadcast over heads.
  const invFreq = Float32Array.from({ length: hs / 2 }, (_, j) => 1 / ROPE_THETA ** ((2 * j) / hs));
  const rs = '/model/rotary_emb';
  const pos = b.unsqueeze(rs, b.op(rs, 'Cast', ['position_ids'], { to: F }), [2]);
  // A Constant node, not an initializer: the frequencies are not learned, so they do not count as parameters.
  const frequencies = b.op(rs, 'Constant', [], { value: floatTensor('inv_freq', [hs / 2], invFreq) });
  const angles = b.unsqueeze(rs, b.op(rs, 'Mul', [pos, frequencies]), [2]);
  const cos = b.op(rs, 'Cos', [angles]);
  const sin = b.op(rs, 'Sin', [angles]);

  // Additive mask [B, 1, T, past+T]: query i (absolute past+i) sees key j when j ≤ past+i and attention_mask[j].
  const ms = '/model/mask';
  const scalar = (shapeOf: string, axis: number) =>
    b.op(ms, 'Gather', [b.op(ms, 'Shape', [shapeOf]), b.ints(ms, [], [axis])]);
  const seq = scalar('input_ids', 1);
  const total = scalar('attention_mask', 1);
  const one = b.ints(ms, [], [1]);
  const queryPos = b.op(ms, 'Range', [b.op(ms, 'Sub', [total, seq]), total, one]);
  const keyPos = b.op(ms, 'Range', [b.ints(ms, [], [0]), total, one]);
  const causal = b.op(ms, 'LessOrEqual', [b.unsqueeze(ms, keyPos, [0]), b.unsqueeze(ms, queryPos, [1])]);
  const padding = b.unsqueeze(ms, b.op(ms, 'Cast', ['attention_mask'], { to: DataType.BOOL }), [1, 2]);
  const allowed = b.op(ms, 'And', [causal, padding]);
  const bias = b.op(ms, 'Where', [
    allowed,
    b.floats(ms, [], [0]),
    b.floats(ms, [], [-3.4028234663852886e38]),
  ]);

  const rmsNorm = (scope: string, input: string, w: string) => {
    const meanSquare = b.reduce(scope, 'ReduceMean', b.op(scope, 'Mul', [input, input]), [-1], 1);
    const rms = b.op(scope, 'Sqrt', [b.op(scope, 'Add', [meanSquare, b.floats(scope, [], [RMS_EPS])])]);
    return b.op(scope, 'Mul', [b.op(scope, 'Div', [input, rms]), w]);
  };
  const linear = (scope: string, input: string, name: string, w: Float32Array, out: number, inp: number) =>
    b.op(scope, 'MatMul', [input, weight(name, [inp, out], transpose(w, out, inp))]);
  // Rotates the pairs (x[2j], x[2j+1]) of each head of [B, T, heads·hs]; returns [B, heads, T, hs].
  const rope = (scope: string, input: string, heads: number) => {
    const pairs = b.op(scope, 'Reshape', [input, b.ints(scope, [5], [0, 0, heads, hs / 2, 2])]);
    const even = b.op(scope, 'Gather', [pairs, b.ints(scope, [], [0])], { axis: 4 });
    const odd = b.op(scope, 'Gather', [pairs, b.ints(scope, [], [1])], { axis: 4 });
    const r0 = b.op(scope, 'Sub', [b.op(scope, 'Mul', [even, cos]), b.op(scope, 'Mul', [odd, sin])]);
    const r1 = b.op(scope, 'Add', [b.op(scope, 'Mul', [even, sin]), b.op(scope, 'Mul', [odd, cos])]);
    const stacked = b.op(scope, 'Concat', [b.unsqueeze(scope, r0, [4]), b.unsqueeze(scope, r1, [4])], {
      axis: 4,
    });
    const merged = b.op(scope, 'Reshape', [stacked, b.ints(scope, [4], [0, 0, heads, hs])]);
    return b.op(scope, 'Transpose', [merged], { perm: [0, 2, 1, 3] });
  };
  const repeatKv = (scope: string, kv: string) => {
    if (rep === 1) return kv;
    const expanded = b.op(scope, 'Expand', [
      b.unsqueeze(scope, kv, [2]),
      b.ints(scope, [5], [1, 1, rep, 1, 1]),
    ]);
    return b.op(scope, 'Reshape', [expanded, b.ints(scope, [4], [0, nHeads, -1, hs])]);
  };

  for (let l = 0; l < nLayers; l++) {
    const p = `/model/layers.${l}`;
    const n = `model.layers.${l}`;
    const pastKey = `past_key_values.${l}.key`;
    const pastValue = `past_key_values.${l}.value`;
    graph.input.push(
      valueInfo(pastKey, F, ['batch_size', nKvHeads, 'past_sequence_length', hs]),
      valueInfo(pastValue, F, ['batch_size', nKvHeads, 'past_sequence_length', hs]),
    );

    const a = `${p}/self_attn`;
    const h = rmsNorm(
      `${p}/input_layernorm`,
      x,
      weight(`${n}.input_layernorm.weight`, [dim], ckpt.rmsAtt[l]!),
    );
    const q = rope(
      a,
      linear(`${a}/q_proj`, h, `${n}.self_attn.q_proj.weight`, ckpt.wq[l]!, dim, dim),
      nHeads,
    );
    const k = rope(
      a,
      linear(`${a}/k_proj`, h, `${n}.self_attn.k_proj.weight`, ckpt.wk[l]!, kvDim, dim),
      nKvHeads,
    );
    const v0 = linear(`${a}/v_proj`, h, `${n}.self_attn.v_proj.weight`, ckpt.wv[l]!, kvDim, dim);
    const v = b.op(a, 'Transpose', [b.op(a, 'Reshape', [v0, b.ints(a, [4], [0, 0, nKvHeads, hs])])], {
      perm: [0, 2, 1, 3],
    });
    const keys = b.op(a, 'Concat', [pastKey, k], { axis: 2 }, `present.${l}.key`);
    const values = b.op(a, 'Concat', [pastValue, v], { axis: 2 }, `present.${l}.value`);
    graph.output.push(
      valueInfo(`present.${l}.key`, F, ['batch_size', nKvHeads, 'total_sequence_length', hs]),
      valueInfo(`present.${l}.value`, F, ['batch_size', nKvHeads, 'total_sequence_length', hs]),
    );

    const kT = b.op(a, 'Transpose', [repeatKv(a, keys)], { perm: [0, 1, 3, 2] });
    const scores = b.op(a, 'Div', [b.op(a, 'MatMul', [q, kT]), b.floats(a, [], [Math.sqrt(hs)])]);
    const probs = b.op(a, 'Softmax', [b.op(a, 'Add', [scores, bias])], { axis: -1 });
    const context = b.op(a, 'Transpose', [b.op(a, 'MatMul', [probs, repeatKv(a, values)])], {
      perm: [0, 2, 1, 3],
    });
    const merged = b.op(a, 'Reshape', [context, b.ints(a, [3], [0, 0, dim])]);
    const attn = linear(`${a}/o_proj`, merged, `${n}.self_attn.o_proj.weight`, ckpt.wo[l]!, dim, dim);
    x = b.op(p, 'Add', [x, attn]);

    const m = `${p}/mlp`;
    const h2 = rmsNorm(
      `${p}/post_attention_layernorm`,
      x,
      weight(`${n}.post_attention_layernorm.weight`, [dim], ckpt.rmsFfn[l]!),
    );
    const gate = linear(`${m}/gate_proj`, h2, `${n}.mlp.gate_proj.weight`, ckpt.w1[l]!, hiddenDim, dim);
    const up = linear(`${m}/up_proj`, h2, `${n}.mlp.up_proj.weight`, ckpt.w3[l]!, hiddenDim, dim);
    const act = b.op(`${m}/act_fn`, 'Mul', [gate, b.op(`${m}/act_fn`, 'Sigmoid', [gate])]);
    const down = linear(
      `${m}/down_proj`,
      b.op(m, 'Mul', [act, up]),
      `${n}.mlp.down_proj.weight`,
      ckpt.w2[l]!,
      dim,
      hiddenDim,
    );
    x = b.op(p, 'Add', [x, down]);
  }

  const normed = rmsNorm('/model/norm', x, weight('model.norm.weight', [dim], ckpt.rmsFinal));
  const classifier = ckpt.config.tied
    ? b.op('/lm_head', 'Transpose', [embedding], { perm: [1, 0] })
    : weight('lm_head.weight', [dim, vocabSize], transpose(ckpt.wcls, vocabSize, dim));
  b.op('/lm_head', 'MatMul', [normed, classifier], {}, 'logits');
  graph.output.unshift(valueInfo('logits', F, ['batch_size', 'sequence_length', vocabSize]));

  return make.model({
    irVersion: 8,
    producerName: 'evop',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: OPSET }],
    graph,
    metadataProps: [{ key: 'evop.source', value: `llama2.c ${JSON.stringify(ckpt.config)}` }],
  });
}
