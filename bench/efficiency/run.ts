/**
 * Search efficiency (issue: benchmarks): how many evaluations evop needs to find the exhaustive optimum, against
 * exhaustive's count, on the real evaluator: CCDS calibration of TinyStories windows, then exhaustive search and
 * evop (seeds 0–2) on the same evaluator and windows. Settings where the space has ≤ 5000 masks.
 * `npm run bench:efficiency`; results in bench/results/efficiency.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { createStrategy, runSearch } from '@evop/core';
import { readCorpus } from '@evop/data';
import {
  calibrate,
  PrefixEvaluator,
  planSearch,
  poolWindows,
  searchSpecSchema,
  splitWindows,
} from '@evop/pipeline';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { machine, saveResult, table } from '../report.ts';
import { storiesModel } from '../stories-model.ts';

const SETTINGS = [
  { model: 'stories260K', granularity: 'sublayer', units: 4 },
  { model: 'stories-deep16', granularity: 'layer', units: 4 },
] as const;
const SEEDS = [0, 1, 2];
const dir = mkdtempSync(join(tmpdir(), 'evop-efficiency-'));
const pool = new InferencePool({ config: runtimeConfig() });
const rows: Record<string, unknown>[] = [];
try {
  const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  for (const setting of SETTINGS) {
    const { model, layout, tokenizer } = storiesModel(setting.model, dir);
    const spec = searchSpecSchema.parse({
      target: { units: setting.units },
      granularity: setting.granularity,
      calibration: 8,
      heldOut: 8,
      seqLen: 64,
      budget: 1000,
    });
    const { space } = planSearch(layout, spec);
    const onnx = await OnnxEvaluator.create({
      pool,
      model,
      layout,
      granularity: spec.granularity,
      cacheDir: dir,
    });
    const windows = poolWindows([docs], tokenizer, spec).pool;
    const calibration = calibrate(spec, windows, await onnx.pooledStates(windows), layout.hiddenSize);
    const { search } = splitWindows(windows, calibration);
    const evaluator = new PrefixEvaluator(onnx, search.windows, search.clusters);
    let t = performance.now();
    const exhaustive = await runSearch({ strategy: createStrategy('exhaustive', space, {}), evaluator });
    const exhaustiveSeconds = (performance.now() - t) / 1000;
    const optimum = exhaustive.best!;
    for (const seed of SEEDS) {
      t = performance.now();
      const evop = await runSearch({
        strategy: createStrategy('evop', space, { seed, budget: spec.budget }),
        evaluator,
      });
      const found = evop.history.find((g) => g.best?.mask === optimum.mask);
      rows.push({
        setting: `${setting.model} ${setting.units} of ${space.size} ${setting.granularity}s`,
        masks: space.maskCount,
        seed,
        exhaustiveEvaluations: exhaustive.history.at(-1)!.evaluations,
        exhaustiveSeconds,
        foundOptimum: found !== undefined,
        evaluationsToOptimum: found?.evaluations ?? null,
        costToOptimum: found?.spent ?? null,
        evopEvaluations: evop.history.at(-1)!.evaluations,
        gapToOptimum: (evop.best!.fitness - optimum.fitness) / optimum.fitness,
        evopSeconds: (performance.now() - t) / 1000,
      });
    }
  }
  process.stdout.write(
    `${table(
      [
        'setting',
        'masks',
        'seed',
        'exhaustive evals',
        'evop evals to optimum',
        'cost (full evals)',
        'evop total',
        'gap',
      ],
      rows.map((r) => [
        r.setting as string,
        r.masks as number,
        r.seed as number,
        r.exhaustiveEvaluations as number,
        (r.evaluationsToOptimum as number | null) ?? 'not found',
        r.costToOptimum === null ? '-' : (r.costToOptimum as number).toFixed(1),
        r.evopEvaluations as number,
        `${(100 * (r.gapToOptimum as number)).toFixed(2)} %`,
      ]),
    )}\n`,
  );
  process.stdout.write(
    `saved ${saveResult('efficiency', { machine: machine(), runtime: pool.config, rows })}\n`,
  );
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
