import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import * as ort from 'onnxruntime-node';
import {
  discoverLayers,
  GATE_INPUT,
  type Granularity,
  IGNORE_LABEL,
  instrument,
  LABELS_INPUT,
  type ModelProto,
  pruneModel,
  readModel,
  unitsOf,
} from '../src/index.ts';
import { make } from '../src/proto.ts';
import {
  builtModel,
  DEEP16,
  feeds,
  gatedNll,
  HFSTYLE,
  labelsOf,
  nllFromLogits,
  relativeError,
  STORIES260K,
  session,
  storyWindows,
} from './helpers.ts';

const hfstyle = () => readModel(resolveDataFile(HFSTYLE)).proto;

async function referenceNll(model: ModelProto, rows: number[][]): Promise<number[]> {
  const layout = discoverLayers(model);
  const out = await (await session(model)).run(feeds(layout, rows));
  return nllFromLogits(out[layout.logits]!.data as Float32Array, rows, layout.vocabSize);
}

test('with all gates open the in-graph NLL equals the NLL computed from the original logits', async () => {
  const rows = storyWindows(4, 64);
  for (const [name, model] of [
    ['stories260K', builtModel(STORIES260K)],
    ['hfstyle', hfstyle()],
    ['deep16', builtModel(DEEP16)],
  ] as const) {
    const layout = discoverLayers(model);
    const reference = await referenceNll(model, rows);
    for (const granularity of ['layer', 'sublayer'] as Granularity[]) {
      const search = instrument(model, layout, { granularity });
      const U = unitsOf(layout, granularity).length;
      const { nll, count } = await gatedNll(
        await session(search),
        layout,
        rows,
        rows.map(() => '1'.repeat(U)),
      );
      assert.deepEqual(count, [63, 63, 63, 63], 'every token after the first of a window is predicted');
      for (const [i, v] of nll.entries())
        assert.ok(
          relativeError(v, reference[i]!) <= 1e-5,
          `${name} ${granularity} row ${i}: ${v} vs ${reference[i]}`,
        );
    }
  }
});

test('a gated mask gives the NLL of the physically pruned model', async () => {
  const rows = storyWindows(2, 64);
  const cases: [string, ModelProto, Granularity, string[]][] = [
    ['stories260K', builtModel(STORIES260K), 'layer', ['10111', '11010', '01111']],
    ['stories260K', builtModel(STORIES260K), 'sublayer', ['0111111111', '1101011110', '1111110011']],
    ['hfstyle', hfstyle(), 'layer', ['01111', '10101']],
    ['hfstyle', hfstyle(), 'sublayer', ['0111101111', '1011110110']],
    ['deep16', builtModel(DEEP16), 'layer', ['1110111011101110', '1111101010111111']],
    ['deep16', builtModel(DEEP16), 'sublayer', ['11011111111011111111111110111101']],
  ];
  for (const [name, model, granularity, masks] of cases) {
    const layout = discoverLayers(model);
    const sess = await session(instrument(model, layout, { granularity }));
    // All masks × rows in one batch: rows with different gates must not influence each other.
    const batchRows = masks.flatMap(() => rows);
    const batchMasks = masks.flatMap((m) => rows.map(() => m));
    const batched = await gatedNll(sess, layout, batchRows, batchMasks);
    for (const [m, mask] of masks.entries()) {
      const pruned = pruneModel(model, layout, mask, { granularity, sourceSha256: 'test' });
      const reference = await referenceNll(pruned, rows);
      const alone = await gatedNll(
        sess,
        layout,
        rows,
        rows.map(() => mask),
      );
      rows.forEach((_, r) => {
        const inBatch = batched.nll[m * rows.length + r]!;
        assert.ok(
          relativeError(alone.nll[r]!, reference[r]!) <= 1e-4,
          `${name} ${mask} row ${r}: gated ${alone.nll[r]} vs pruned ${reference[r]}`,
        );
        assert.ok(
          relativeError(inBatch, alone.nll[r]!) <= 1e-6,
          `${name} ${mask} row ${r}: batched ${inBatch} vs alone ${alone.nll[r]}`,
        );
      });
    }
  }
});

test('ignored labels (−100) are left out of the NLL and the count', async () => {
  const model = builtModel(STORIES260K);
  const layout = discoverLayers(model);
  const sess = await session(instrument(model, layout, { granularity: 'layer' }));
  const [row] = storyWindows(1, 32);
  // Only the predictions of positions 16…30 count: the NLL of the whole row minus that of its first 16 predictions.
  const labels = labelsOf(row!).map((label, t) => (t < 16 ? IGNORE_LABEL : label));
  const { nll, count } = await gatedNll(sess, layout, [row!], ['11111'], [labels]);
  assert.deepEqual(count, [15]);
  const [whole] = await referenceNll(model, [row!]);
  const [firstHalf] = await referenceNll(model, [row!.slice(0, 17)]);
  assert.ok(relativeError(nll[0]!, whole! - firstHalf!) <= 1e-4, `${nll[0]} vs ${whole! - firstHalf!}`);
});

test('pooled states and unit cosines equal those computed from the exposed hidden states', async () => {
  const model = builtModel(STORIES260K);
  const layout = discoverLayers(model);
  const rows = storyWindows(3, 40);
  const search = instrument(model, layout, { granularity: 'layer', pooled: true, unitCos: true });
  const input = feeds(layout, rows);
  input[GATE_INPUT] = new ort.Tensor('float32', new Float32Array(15).fill(1), [3, 5]);
  input[LABELS_INPUT] = new ort.Tensor('int64', BigInt64Array.from(rows.flatMap(labelsOf), BigInt), [3, 40]);
  const out = await (await session(search)).run(input);
  assert.deepEqual(out.evop_pooled!.dims, [3, 64]);
  assert.deepEqual(out.evop_unit_cos!.dims, [3, 5]);

  // Reference: the plain model with its residual-stream tensors exposed as extra outputs.
  const streams = [
    layout.blocks[0]!.input,
    ...layout.blocks.filter((_, i) => i % 2 === 1).map((b) => b.output),
  ];
  const exposed = make.model({
    ...model,
    graph: make.graph({
      ...model.graph,
      output: [...model.graph.output, ...streams.map((name) => make.valueInfo({ name }))],
    }),
  });
  const ref = await (await session(exposed)).run(feeds(layout, rows));
  const h = (i: number) => ref[streams[i]!]!.data as Float32Array;
  for (let b = 0; b < 3; b++) {
    for (let d = 0; d < 64; d++) {
      let sum = 0;
      for (let t = 0; t < 40; t++) sum += h(5)[(b * 40 + t) * 64 + d]!;
      assert.ok(Math.abs(sum / 40 - (out.evop_pooled!.data as Float32Array)[b * 64 + d]!) <= 1e-5);
    }
    for (let u = 0; u < 5; u++) {
      let mean = 0;
      for (let t = 0; t < 40; t++) {
        let dot = 0;
        let nx = 0;
        let ny = 0;
        for (let d = 0; d < 64; d++) {
          const x = h(u)[(b * 40 + t) * 64 + d]!;
          const y = h(u + 1)[(b * 40 + t) * 64 + d]!;
          dot += x * y;
          nx += x * x;
          ny += y * y;
        }
        mean += dot / Math.sqrt(nx * ny) / 40;
      }
      assert.ok(Math.abs(mean - (out.evop_unit_cos!.data as Float32Array)[b * 5 + u]!) <= 1e-5, `unit ${u}`);
    }
  }
});

test('the search graph returns no logits and no KV cache', () => {
  const model = hfstyle();
  const search = instrument(model, discoverLayers(model), { granularity: 'sublayer' });
  assert.deepEqual(
    search.graph.output.map((o) => o.name),
    ['evop_nll', 'evop_count'],
  );
  assert.ok(
    search.graph.input.some((i) => i.name === 'past_key_values.4.value'),
    'past inputs stay, fed empty',
  );
  const ifs = (m: ModelProto) => m.graph.node.filter((n) => n.opType === 'If').length;
  assert.equal(ifs(search), 10, 'each block can be skipped when closed');
  assert.equal(
    ifs(instrument(model, discoverLayers(model), { granularity: 'sublayer', skipClosed: false })),
    0,
  );
});
