import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { SearchSpace } from '@evop/core';
import { discoverLayers, readModel } from '@evop/onnx';
import type { PruneReport } from '../src/index.ts';
import { data, evop, smallPrune, tempDir } from './helpers.ts';

/** stories260K as PyTorch's exporter writes it: the file `evop apply` takes too. */
const onnxModel = resolveDataFile('stories260K-onnx-hfstyle/model.onnx');
const wikitext = resolveDataFile('wikitext-2-raw-test/wikitext-2-raw-v1-test.txt');

/** smallPrune (2 of stories260K's 10 sub-blocks) on its ONNX export, with `--targets` in place of `--remove 2`. */
const frontPrune = (out: string, targets: string, extra: string[] = []) => {
  const args = smallPrune(out, extra).map((a) => (a === data.model ? onnxModel : a));
  args.splice(args.indexOf('--remove'), 2, '--targets', targets);
  return args;
};

test('evop prune --targets: a model and mask per target, each seeded from its neighbours, the front in the report, evop apply on any point', async () => {
  const out = tempDir();
  const run = await evop(frontPrune(out, '2,1,4', ['--eval-data', wikitext, '--json']));
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as PruneReport;
  const front = report.front!;
  assert.deepEqual(
    front.map((p) => [p.units, p.target, p.model]),
    [
      [1, false, 'front/1-units/model.onnx'],
      [2, true, 'model.onnx'],
      [4, false, 'front/4-units/model.onnx'],
    ],
  );
  // The run's own target is still the comparison's: model.onnx and the table are the 2-unit search's.
  assert.equal(front[1]!.mask, report.result.mask);
  assert.equal(front[1]!.perplexity, report.table[1]!.perplexity);
  for (const point of front) {
    assert.equal([...point.mask].filter((b) => b === '0').length, point.units, point.mask);
    const layout = discoverLayers(readModel(join(out, point.model)).proto);
    assert.equal(layout.blocks.length, 10 - point.units, `${point.model} has its units removed`);
    assert.ok(point.latency?.prefill.ratio.median, `${point.units} units: prefill timed`);
    assert.equal(point.datasets.length, 2, 'held-out perplexity on both data sets');
    const mask = JSON.parse(readFileSync(join(out, point.model.replace('model.onnx', 'mask.json')), 'utf8'));
    assert.equal(mask.mask, point.mask, `${point.units} units: mask.json beside its model`);
  }
  // The lowest perplexity is never dominated; more units pruned never cost less perplexity here.
  const best = front.reduce((a, b) => (b.perplexity < a.perplexity ? b : a));
  assert.equal(best.pareto, true);
  // Each point's search started from its neighbour's best mask, moved to its unit count by block influence.
  const space = (pruned: number) => new SearchSpace({ units: report.model.units, target: { units: pruned } });
  // The first population (evop's greedy walk, before it, keeps none).
  const first = (key: string) =>
    (
      JSON.parse(readFileSync(join(out, 'checkpoints', `${key}.json`), 'utf8')).history as {
        population: string[];
      }[]
    ).find((g) => g.population.length > 0)!.population;
  assert.ok(first('evop@4').includes(space(4).fit(report.result.mask, report.influence)));
  assert.ok(first('evop@1').includes(space(1).fit(report.result.mask, report.influence)));

  // --json gives the front with paths a script can open.
  const json = JSON.parse(run.stdout) as { front: { units: number; model: string }[] };
  assert.deepEqual(
    json.front.map((p) => p.model),
    front.map((p) => join(out, p.model)),
  );
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(
    html.includes('function drawFront(') && html.includes('id="front-table"'),
    'the front is plotted',
  );

  // Any point ships with evop apply: its mask.json on the source model gives the same file.
  const applied = tempDir();
  const apply = await evop([
    'apply',
    onnxModel,
    '--mask',
    join(out, 'front', '4-units', 'mask.json'),
    '--out',
    applied,
  ]);
  assert.equal(apply.code, 0, apply.stderr);
  assert.ok(
    readFileSync(join(applied, 'model.onnx')).equals(
      readFileSync(join(out, 'front', '4-units', 'model.onnx')),
    ),
    'evop apply writes the front point’s model byte for byte',
  );
  assert.ok(!existsSync(join(out, 'front', '2-units')), 'the run’s own target is not repeated in front/');
});

test('bad --targets exit with code 2 naming the list item', async () => {
  const out = tempDir();
  const cases: [string[], RegExp][] = [
    [frontPrune(join(out, 'a'), '2'), /--targets: '2' is not a list of two or more targets/],
    [frontPrune(join(out, 'r'), '4-2'), /--targets: '4-2' is not a range FROM-TO\[:STEP\] of unit counts/],
    // 2-10:4 is 2, 6, 10: ten units are the whole model.
    [
      frontPrune(join(out, 's'), '2-10:4'),
      /--targets: target 3 of the list: 10 units to prune, but the model has only 10/,
    ],
    [frontPrune(join(out, 'b'), '2,x'), /--targets: 'x' is neither a number of units nor a fraction/],
    [
      frontPrune(join(out, 'c'), '2,4,4'),
      /--targets: target 3 of the list: prunes 4 units, as another target does/,
    ],
    [
      frontPrune(join(out, 'd'), '2,12'),
      /--targets: target 2 of the list: 12 units to prune, but the model has only 10/,
    ],
    [
      [...frontPrune(join(out, 'e'), '2,4'), '--remove', '2'],
      /give exactly one of --remove N .* or --targets/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await evop(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});
