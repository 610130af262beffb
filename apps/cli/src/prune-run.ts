import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runtimeConfig } from '@evop/config';
import { MemoryFitnessCache, type SearchCheckpoint } from '@evop/core';
import { readCorpus } from '@evop/data';
import { discoverLayers } from '@evop/onnx';
import {
  assembleReport,
  type Calibration,
  type CheckpointStore,
  calibrate,
  finalize,
  PrefixEvaluator,
  type PruneReport,
  planSearch,
  poolWindows,
  renderReportHtml,
  runSearches,
  splitWindows,
  summaryOf,
} from '@evop/pipeline';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { readJson, writeJson } from './atomic-json.ts';
import { CliError } from './cli-error.ts';
import { loadModelSource } from './model-source.ts';
import type { Progress } from './progress.ts';
import type { PruneSpec } from './prune-spec.ts';

/** Checkpoints as checkpoints/<strategy>.json in the output folder. */
function checkpointFiles(dir: string): CheckpointStore {
  return {
    load: async (strategy) => readJson<SearchCheckpoint>(join(dir, `${strategy}.json`)),
    save: async (strategy, checkpoint) => writeJson(join(dir, `${strategy}.json`), checkpoint),
  };
}

/**
 * The whole method in one process: CCDS calibration, the search (and the peer strategies with --baselines, on
 * the same calibration windows and evaluator), the pruned export, and the final evaluation on held-out windows.
 * Every stage's result is kept in `out`, so `--resume` continues where a stopped run left off.
 */
export async function runPrune(
  spec: PruneSpec,
  out: string,
  progress: Progress,
  signal: AbortSignal,
): Promise<PruneReport> {
  const started = Date.now();
  const timings: Record<string, number> = {};
  const time = async <T>(stage: string, fn: () => Promise<T> | T): Promise<T> => {
    const t = Date.now();
    const result = await fn();
    timings[stage] = (Date.now() - t) / 1000;
    return result;
  };
  mkdirSync(join(out, 'checkpoints'), { recursive: true });
  const work = join(out, 'work');
  const cacheDir = join(work, 'cache');
  const source = loadModelSource(spec.model, spec.tokenizer, work);
  const layout = discoverLayers(source.model.proto);
  const { units, space } = planSearch(layout, spec);

  const pool = new InferencePool({ config: runtimeConfig() });
  try {
    const dense = await OnnxEvaluator.create({
      pool,
      model: source.model,
      layout,
      granularity: spec.granularity,
      cacheDir,
    });
    const windows = poolWindows(
      spec.data.map((file) => readCorpus(file)),
      source.tokenizer,
      spec,
    );

    progress.stage(
      `calibration: ${windows.count} windows of ${spec.seqLen} tokens, ${spec.sampling} sampling`,
    );
    const calibrationFile = join(out, 'calibration.json');
    const calibration =
      readJson<Calibration>(calibrationFile) ??
      (await time('calibration', async () => {
        const states = spec.sampling === 'ccds' ? await dense.pooledStates(windows, signal) : undefined;
        const saved = calibrate(spec, windows, states, layout.hiddenSize);
        writeJson(calibrationFile, saved);
        return saved;
      }));
    if (calibration.poolSha256 !== windows.sha256)
      throw new CliError(`--resume: the data no longer gives the windows this run was calibrated on`);
    const sets = splitWindows(windows, calibration);
    const influence = (await time('influence', () => dense.unitCosines(sets.search.windows, signal))).map(
      (c) => 1 - c,
    );

    const searches = await runSearches({
      spec,
      space,
      evaluator: new PrefixEvaluator(dense, sets.search.windows, sets.search.clusters),
      influence,
      cache: new MemoryFitnessCache(),
      checkpoints: checkpointFiles(join(out, 'checkpoints')),
      progress,
      signal,
    });

    const finalized = await finalize({
      pool,
      model: source.model,
      layout,
      tokenizer: source.tokenizer,
      spec,
      units,
      space,
      searches: searches.map(summaryOf),
      heldOut: sets.heldOut,
      outDir: out,
      cacheDir,
      signal,
      stage: (m) => progress.stage(m),
      timings,
    });
    writeJson(join(out, 'mask.json'), {
      mask: finalized.mask,
      granularity: spec.granularity,
      pruned: finalized.pruned,
      units: units.map((u) => u.id),
    });
    const report = assembleReport({
      spec,
      bos: source.tokenizer.bosId !== undefined,
      model: {
        path: source.model.path,
        sha256: source.model.sha256,
        layers: layout.layers,
        params: layout.totalParams,
        units,
      },
      poolWindows: windows.count,
      calibration,
      influence,
      searches,
      modelFile: 'model.onnx',
      finalized,
      timings: { ...timings, total: (Date.now() - started) / 1000 },
    });
    writeJson(join(out, 'report.json'), report);
    writeFileSync(join(out, 'report.html'), renderReportHtml(report));
    return report;
  } finally {
    await pool.close();
  }
}
