import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { runtimeConfig } from '@evop/config';
import { MemoryFitnessCache, type SearchCheckpoint } from '@evop/core';
import { readCorpus, windowsFromDocuments } from '@evop/data';
import { maskFileOf } from '@evop/onnx';
import {
  type CheckpointStore,
  checkContext,
  finalize,
  frontDir,
  type PipelineBackend,
  type PipelineStore,
  PrefixEvaluator,
  type PruneReport,
  poolWindows,
  renderReportHtml,
  runPrunePipeline,
  type StageStore,
  type StoredCalibration,
} from '@evop/pipeline';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { readJson, writeJson } from './atomic-json.ts';
import { CliError } from './cli-error.ts';
import { loadModelSource, modelName } from './model-source.ts';
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

/** The report's name of each data file: its base name, or its path where two files share the base name. */
function datasetNames(files: string[]): (file: string) => string {
  const count = new Map<string, number>();
  for (const f of files) count.set(basename(f), (count.get(basename(f)) ?? 0) + 1);
  return (file) => (count.get(basename(file))! > 1 ? file : basename(file));
}

/**
 * The whole method in one process: the pipeline the service runs (calibration, the searches and their peers on
 * one evaluator, finalize, report), with its model work in this process's evaluator pool and its state in `out`,
 * so that `--resume` continues where a stopped run left off.
 */
export async function runPrune(
  spec: PruneSpec,
  out: string,
  progress: Progress,
  signal: AbortSignal,
): Promise<PruneReport> {
  mkdirSync(join(out, 'checkpoints'), { recursive: true });
  const work = join(out, 'work');
  const cacheDir = join(work, 'cache');
  const source = loadModelSource(spec.model, spec.tokenizer, work);
  const { layout } = source;
  checkContext(layout, spec); // before any model work: windows past the context would fail in onnxruntime

  const pool = new InferencePool({ config: runtimeConfig() });
  try {
    const dense = await OnnxEvaluator.create({
      pool,
      model: source.model,
      layout,
      granularity: spec.granularity,
      cacheDir,
    });
    const { pool: windows, corpusWindows } = poolWindows(
      spec.data.map((file) => readCorpus(file)),
      source.tokenizer,
      spec,
    );
    // Each out-of-domain corpus on windows of its own, as many as the held-out set (a spec.json of an earlier
    // evop has no evalData).
    const evalData = spec.evalData ?? [];
    const name = datasetNames([...spec.data, ...evalData]);
    const outOfDomain = evalData.map((file) => {
      const own = windowsFromDocuments(readCorpus(file), source.tokenizer, spec.seqLen, spec.heldOut);
      if (own.count === 0)
        throw new CliError(`--eval-data: '${file}' gives no window of ${spec.seqLen} tokens`);
      return { name: name(file), windows: own };
    });
    const calibrationFile = join(out, 'calibration.json');
    const backend: PipelineBackend = {
      pooledStates: (pool, signal) => dense.pooledStates(pool, signal),
      unitCosines: (calibration, signal) => dense.unitCosines(calibration.windows, signal),
      search: async (search) => ({
        evaluator: new PrefixEvaluator(dense, search.windows, search.clusters, search.calibration),
        cache: new MemoryFitnessCache(),
        checkpoints: checkpointFiles(join(out, 'checkpoints')),
      }),
      finalize: (stage) =>
        finalize({
          ...stage,
          pool,
          model: source.model,
          layout,
          tokenizer: source.tokenizer,
          spec,
          outDir: out,
          cacheDir,
          stages: stageFiles(join(out, 'stages')),
          stage: (m) => progress.stage(m),
        }),
    };
    const store: PipelineStore = {
      loadCalibration: async () => {
        const stored = readJson<Partial<StoredCalibration>>(calibrationFile);
        // A run of an earlier evop kept no influence: its calibration is made again (the same, from the seed).
        return stored?.calibration && stored.influence ? (stored as StoredCalibration) : undefined;
      },
      saveCalibration: async (stored) => writeJson(calibrationFile, stored),
      // The searches' answers are kept before anything else can fail: mask.json, and one per front point.
      saveSearched: async (searches, front) => {
        const save = (dir: string, mask: string) => {
          mkdirSync(dir, { recursive: true });
          writeJson(join(dir, 'mask.json'), maskFileOf(source.model, layout, spec.granularity, mask));
        };
        save(out, searches[0]!.best.mask);
        for (const point of front) save(join(out, frontDir(point.pruned)), point.best.mask);
      },
    };
    const { report } = await runPrunePipeline({
      spec,
      layout,
      pool: windows,
      corpora: spec.data.map((file, i) => ({ name: name(file), windows: corpusWindows[i]! })),
      outOfDomain,
      backend,
      store,
      progress,
      signal,
      stage: async (stage) => {
        if (stage === 'calibration')
          progress.stage(
            `calibration: ${windows.count} windows of ${spec.seqLen} tokens, ${spec.sampling} sampling`,
          );
      },
      report: {
        spec,
        model: { name: modelName(spec.model), path: spec.model, sha256: source.model.sha256 },
        bos: source.tokenizer.bosId !== undefined,
        modelFile: 'model.onnx',
      },
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
