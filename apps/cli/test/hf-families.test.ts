import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { discoverLayers, type MaskFile, readModel, unitsOf } from '@evop/onnx';
import type { PruneReport } from '../src/index.ts';
import { data, evop, tempDir } from './helpers.ts';

const zoo = dirname(resolveDataFile('hf-zoo/README.md'));
const families = readdirSync(zoo).filter((f) => existsSync(join(zoo, f, 'reference.json')));

/** The export a granularity is tried on: dynamo at layer granularity; the KV-cache export (else TorchScript) below. */
function exportFor(family: string, granularity: 'layer' | 'sublayer'): string {
  const file = (kind: string) => join(zoo, family, `model.${kind}.onnx`);
  if (granularity === 'layer') return file('dynamo');
  return existsSync(file('ts-past')) ? file('ts-past') : file('ts');
}

test('evop prune runs end to end on every hf-zoo family, at layer and at sublayer granularity', async () => {
  assert.ok(families.length >= 9, families.join(', '));
  for (const family of families) {
    for (const [granularity, strategy, remove] of [
      ['layer', 'sleb', 2],
      ['sublayer', 'blockpruner', 3],
    ] as const) {
      const model = exportFor(family, granularity);
      const out = tempDir();
      const run = await evop([
        'prune',
        ...['--model', model, '--tokenizer', join(zoo, 'tokenizer.json'), '--data', data.stories],
        ...['--remove', String(remove), '--granularity', granularity, '--strategy', strategy],
        ...['--calibration', '8', '--held-out', '8', '--seq-len', '64', '--out', out, '--quiet'],
      ]);
      const what = `${family} ${granularity} (${model})`;
      assert.equal(run.code, 0, `${what}: ${run.stderr}`);
      const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as PruneReport;
      assert.deepEqual(
        report.table.map((r) => r.method),
        ['dense', strategy],
        what,
      );
      assert.deepEqual(report.failed, [], what);
      assert.equal(report.result.pruned.length, remove, what);
      assert.ok(report.result.consistency <= 1e-4, `${what}: search graph and pruned file agree`);
      const mask = JSON.parse(readFileSync(join(out, 'mask.json'), 'utf8')) as MaskFile;
      assert.equal(mask.mask, report.result.mask);
      const pruned = discoverLayers(readModel(join(out, 'model.onnx')).proto);
      assert.equal(unitsOf(pruned, 'sublayer').length, granularity === 'layer' ? 8 : 9, what);
      assert.equal(
        report.latency?.decode === null,
        !model.includes('past'),
        `${what}: decode timed with a cache`,
      );
    }
  }
});
