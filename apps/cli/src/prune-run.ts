import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runtimeConfig } from '@evop/config';
import { MemoryFitnessCache, type SearchCheckpoint } from '@evop/core';
import { readCorpus } from '@evop/data';
import { discoverLayers, maskFileOf } from '@evop/onnx';
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
  type StageStore,
  splitWindows,
  summaryOf,
} from '@evop/pipeline';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { readJson, writeJson } from './atomic-json.ts';
import { CliError } from './cli-error.ts';
import { loadModelSource } from './model-source.ts';
import type { Progress } from './progress.ts';
import type { PruneSpec } from './prune-spec.ts';

/** Results of finalize's stages as stages/<stage>.json in the output folder. */
function stageFiles(dir: string): StageStore {
  const file = (stage: string) => join(dir, `${stage.replace(/[^\w.-]/g, '_')}.json`);
  return {
    load: async <T>(stage: string) => readJson<T>(file(stage)),
    save: async (stage, value) => writeJson(file(stage), value),
  };
}

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

    // The search's answer is kept before anything else can fail.
    const best = searches[0]!.best.mask;
    writeJson(join(out, 'mask.json'), maskFileOf(source.model, layout, spec.granularity, best));
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
      stages: stageFiles(join(out, 'stages')),
      signal,
      stage: (m) => progress.stage(m),
      timings,
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
    try {
      writeFileSync(join(out, 'report.html'), renderReportHtml(report));
    } catch (err) {
      report.failed.push({ stage: 'report.html', error: (err as Error).message });
      writeJson(join(out, 'report.json'), report);
    }
    return report;
  } finally {
    await pool.close();
  }
}
