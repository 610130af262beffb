import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveDataFile } from '@evop/config';
import * as ort from 'onnxruntime-node';
import {
  DataType,
  type DecoderLayout,
  discoverLayers,
  GATE_INPUT,
  IGNORE_LABEL,
  instrument,
  LABELS_INPUT,
  type ModelProto,
  pruneModel,
  readModel,
  unitsOf,
} from '../src/index.ts';
import {
  batchFeeds,
  decodedLogits,
  EXPORTS,
  readReference,
  referenceBatchLogits,
  session,
  tolerance,
  worstDiff,
  zooDir,
  zooExports,
  zooFamilies,
} from './hf-zoo.ts';

const granularityOf = (layout: DecoderLayout, mask: string) =>
  mask.length === unitsOf(layout, 'layer').length ? 'layer' : 'sublayer';

const loaded = new Map<string, { proto: ModelProto; layout: DecoderLayout }>();
function load(path: string) {
  let model = loaded.get(path);
  if (!model) {
    const { proto } = readModel(path);
    model = { proto, layout: discoverLayers(proto) };
    loaded.set(path, model);
  }
  return model;
}

test('the zoo holds the families and exports these tests are about', () => {
  const families = zooFamilies();
  assert.ok(families.length >= 9, `families: ${families.join(', ')}`);
  for (const family of families) assert.ok(zooExports(family).length >= 2, family);
});

/** Per reference mask, the largest |logit − transformers' logit| of the export pruned by evop (memoised). */
const measured = new Map<string, Promise<{ name: string; diff: number }[]>>();
function measure(family: string, path: string) {
  let result = measured.get(path);
  if (!result) {
    result = (async () => {
      const reference = readReference(family);
      const { proto, layout } = load(path);
      const diffs: { name: string; diff: number }[] = [];
      for (const { name, mask, logits } of reference.masks) {
        const granularity = granularityOf(layout, mask);
        assert.equal(unitsOf(layout, granularity).length, mask.length, `${path}: units of ${name}`);
        const pruned = pruneModel(proto, layout, mask, { granularity, sourceSha256: 'test' });
        // The pruned file is a model evop understands again: the units it kept, of the kinds they were.
        const kept = unitsOf(layout, 'sublayer').filter(
          (u, i) => (granularity === 'layer' ? mask[u.layer] : mask[i]) === '1',
        );
        assert.deepEqual(
          unitsOf(discoverLayers(pruned), 'sublayer').map((u) => u.kind),
          kept.map((u) => u.kind),
          `${path} pruned by ${name}`,
        );
        const ours = await referenceBatchLogits(await session(pruned), layout, reference);
        diffs.push({ name, diff: worstDiff(ours, logits, reference.attentionMask) });
      }
      return diffs;
    })();
    measured.set(path, result);
  }
  return result;
}

test('every family and export, pruned by evop, gives the logits transformers gives with those units removed', async (t) => {
  const worst: string[] = [];
  for (const family of zooFamilies()) {
    for (const { kind, path } of zooExports(family)) {
      const { layout } = load(path);
      assert.deepEqual(
        unitsOf(layout, 'sublayer').map((u) => u.id),
        Array.from({ length: layout.layers }, (_, l) => [`attn${l}`, `mlp${l}`]).flat(),
        `${family} ${kind}: an attention and an MLP unit per layer`,
      );
      const diffs = await measure(family, path);
      for (const { name, diff } of diffs)
        assert.ok(diff <= tolerance(layout), `${family} ${kind} ${name}: max |Δlogit| ${diff}`);
      worst.push(`${family} ${EXPORTS[kind]}: ${Math.max(...diffs.map((d) => d.diff)).toExponential(1)}`);
    }
  }
  t.diagnostic(`worst |Δlogit| per export: ${worst.join('; ')}`);
});

test('a KV-cache export pruned by evop decodes token by token to the logits of its full forward', async () => {
  for (const family of zooFamilies()) {
    const reference = readReference(family);
    for (const { kind, path } of zooExports(family).filter((e) => e.kind.includes('past'))) {
      const { proto, layout } = load(path);
      // A whole layer and an attention block (with its cache) removed.
      for (const mask of ['110111', '101111111111']) {
        const granularity = granularityOf(layout, mask);
        const pruned = pruneModel(proto, layout, mask, { granularity, sourceSha256: 'test' });
        const prunedLayout = discoverLayers(pruned);
        const sess = await session(pruned);
        const full = await referenceBatchLogits(sess, prunedLayout, reference);
        const stepped = await decodedLogits(sess, prunedLayout, reference);
        const diff = worstDiff(stepped, full, reference.attentionMask);
        assert.ok(diff <= tolerance(layout), `${family} ${kind} ${mask}: max |Δlogit| ${diff}`);
      }
    }
  }
});

/** Next-token labels of the reference batch: −100 where the position or its successor is padding. */
function labelsOf(ids: number[][], mask: number[][]): number[][] {
  return ids.map((row, r) =>
    row.map((_, t) => (t + 1 < row.length && mask[r]![t] && mask[r]![t + 1] ? row[t + 1]! : IGNORE_LABEL)),
  );
}

/** Per row, the summed NLL of the labels under the logits [rows, T, vocab], in float64. */
function nllOf(logits: Float32Array, labels: number[][]): number[] {
  const T = labels[0]!.length;
  const vocab = logits.length / (labels.length * T);
  return labels.map((row, r) => {
    let nll = 0;
    row.forEach((label, t) => {
      if (label === IGNORE_LABEL) return;
      const at = (r * T + t) * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, logits[at + v]!);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[at + v]! - max);
      nll += max + Math.log(sum) - logits[at + label]!;
    });
    return nll;
  });
}

test("the search graph's NLL for a mask is the NLL of the model pruned with that mask", async () => {
  for (const family of zooFamilies()) {
    const reference = readReference(family);
    const labels = labelsOf(reference.inputIds, reference.attentionMask);
    for (const { kind, path } of zooExports(family)) {
      const { proto, layout } = load(path);
      for (const granularity of ['layer', 'sublayer'] as const) {
        const masks = reference.masks
          .map((m) => m.mask)
          .filter((m) => granularityOf(layout, m) === granularity);
        const search = await session(instrument(proto, layout, { granularity }));
        // Every mask's rows in one batch: rows with other gates must not change a row's result.
        const rows = masks.flatMap((mask) => reference.inputIds.map((ids, r) => ({ mask, ids, r })));
        const int64 = (values: number[][]) =>
          new ort.Tensor('int64', BigInt64Array.from(values.flat(), BigInt), [
            values.length,
            values[0]!.length,
          ]);
        const feeds = batchFeeds(layout, {
          ids: rows.map((x) => x.ids),
          mask: rows.map((x) => reference.attentionMask[x.r]!),
          positions: rows.map((x) => x.ids.map((_, t) => t)),
        });
        feeds[GATE_INPUT] = new ort.Tensor(
          'float32',
          Float32Array.from(rows.map((x) => x.mask).join(''), Number),
          [rows.length, masks[0]!.length],
        );
        feeds[LABELS_INPUT] = int64(rows.map((x) => labels[x.r]!));
        const gated = (await search.run(feeds, ['evop_nll'])).evop_nll!.data as Float32Array;
        for (const [m, mask] of masks.entries()) {
          const pruned = pruneModel(proto, layout, mask, { granularity, sourceSha256: 'test' });
          const logits = await referenceBatchLogits(await session(pruned), layout, reference);
          nllOf(logits, labels).forEach((want, r) => {
            const got = gated[m * 2 + r]!;
            assert.ok(
              Math.abs(got - want) <= (layout.streamType === DataType.FLOAT16 ? 1e-4 : 1e-5) * Math.abs(want),
              `${family} ${kind} ${mask} row ${r}: search graph ${got}, pruned model ${want}`,
            );
          });
        }
      }
    }
  }
});

const README = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'README.md');
const BEGIN = '<!-- supported-exports:begin -->';
const END = '<!-- supported-exports:end -->';
/** Fixtures of exports evop refuses, with the tool that wrote them. */
const REFUSED = {
  'onnx-genai-tiny-random-llama-fp16/model.onnx': 'onnxruntime-genai model builder',
  'onnx-ort-tiny-random-gpt2-fused/past.onnx': 'onnxruntime transformers optimizer',
};

/** The README's table, made from what the fixtures give: never typed by hand. */
async function supportTable(): Promise<string> {
  const kinds = Object.keys(EXPORTS) as (keyof typeof EXPORTS)[];
  const rows = [];
  for (const family of zooFamilies()) {
    const config = JSON.parse(readFileSync(join(zooDir(), family, 'hf', 'config.json'), 'utf8'));
    const exports = zooExports(family);
    const { layout } = load(exports[0]!.path);
    const parallel = layout.blocks.some((b, i) => i > 0 && layout.blocks[i - 1]!.output === b.output);
    const cells = [];
    for (const kind of kinds) {
      const found = exports.find((e) => e.kind === kind);
      if (!found) cells.push('—');
      else {
        const diffs = await measure(family, found.path);
        cells.push(diffs.every((d) => d.diff <= tolerance(load(found.path).layout)) ? '✓' : '✗');
      }
    }
    const shape = `${layout.layers} layers, ${parallel ? 'parallel' : 'sequential'} attention + MLP`;
    rows.push(`| ${family} (\`${config.architectures[0]}\`) | ${shape} | ${cells.join(' | ')} |`);
  }
  const refused = Object.entries(REFUSED).map(([file, tool]) => {
    try {
      discoverLayers(readModel(resolveDataFile(file)).proto);
      return `| \`${file}\` (${tool}) | accepted |`;
    } catch (err) {
      const ops = (err as Error).message.match(/fused operators? ([^(]+) \(/)?.[1]?.trim();
      return `| \`${file}\` (${tool}) | refused: ${ops ? `fused ${ops}` : (err as Error).message} |`;
    }
  });
  return [
    `| family (\`transformers\` class) | structure | ${kinds.map((k) => EXPORTS[k]).join(' | ')} |`,
    `|---|---|${kinds.map(() => '---').join('|')}|`,
    ...rows,
    '',
    '| export | discovery |',
    '|---|---|',
    ...refused,
  ].join('\n');
}

test("README's table of supported exports is the one the fixtures give", async () => {
  const table = await supportTable();
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  assert.ok(start >= 0 && end > start, `README.md has the markers ${BEGIN} … ${END}`);
  const section = `${BEGIN}\n${table}\n${END}`;
  if (process.env.EVOP_UPDATE_README)
    writeFileSync(README, readme.slice(0, start) + section + readme.slice(end + END.length));
  else
    assert.equal(
      readme.slice(start, end + END.length),
      section,
      'regenerate it: EVOP_UPDATE_README=1 node --import tsx --test packages/onnx/test/hf-zoo.test.ts',
    );
});
