import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import {
  type CalibrationSet,
  createStrategy,
  type GenerationRecord,
  MemoryFitnessCache,
  runSearch,
  type SearchCheckpoint,
  SearchOptionError,
  SearchSpace,
  type StrategyName,
  selectCalibration,
} from '@evop/core';
import { readCorpus, readTask, TASKS, TokenWindows, windowsFromDocuments } from '@evop/data';
import { discoverLayers, pruneModel, readModel, unitsOf, writeModel } from '@evop/onnx';
import {
  InferencePool,
  type LatencyResult,
  measureLatency,
  OnnxEvaluator,
  onnxruntimeVersion,
  scoreMultipleChoice,
} from '@evop/runtime';
import { readJson, writeJson } from './atomic-json.ts';
import { CliError } from './cli-error.ts';
import { FidelityEvaluator } from './fidelity-evaluator.ts';
import { loadModelSource } from './model-source.ts';
import type { Progress } from './progress.ts';
import type { PruneSpec } from './prune-spec.ts';
import { type PruneReport, type ReportRow, renderReportHtml } from './report.ts';

/** The search stopped on a signal; its checkpoints are in the output folder. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

const PEERS: Record<'layer' | 'sublayer', StrategyName[]> = {
  layer: ['shortgpt', 'sleb', 'evopress', 'random'],
  sublayer: ['shortgpt', 'blockpruner', 'evopress', 'random'],
};

const FLAG_OF: Record<string, string> = {
  'target.units': '--remove',
  'target.fraction': '--sparsity',
  target: '--remove',
};

/** Windows from each corpus in turn, `perCorpus` at most from each, so that mixed corpora are all represented. */
function poolWindows(
  spec: PruneSpec,
  tokenizer: Parameters<typeof windowsFromDocuments>[1],
  total: number,
): TokenWindows {
  const perCorpus = Math.ceil(total / spec.data.length);
  const parts = spec.data.map((file) =>
    windowsFromDocuments(readCorpus(file), tokenizer, spec.seqLen, perCorpus),
  );
  const tokens = Int32Array.from(parts.flatMap((p) => Array.from(p.tokens)));
  const windows = new TokenWindows(spec.seqLen, tokens);
  if (windows.count < spec.calibration + spec.heldOut)
    throw new CliError(
      `--data: the corpora give ${windows.count} windows of ${spec.seqLen} tokens; --calibration ${spec.calibration} + ` +
        `--held-out ${spec.heldOut} need ${spec.calibration + spec.heldOut}`,
    );
  return windows;
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
  const source = loadModelSource(spec.model, spec.tokenizer, work);
  const layout = discoverLayers(source.model.proto);
  const units = unitsOf(layout, spec.granularity);
  let space: SearchSpace;
  try {
    space = new SearchSpace({
      units: units.map((u) => ({ id: u.id, params: u.params })),
      target: spec.target,
    });
  } catch (err) {
    if (err instanceof SearchOptionError)
      throw new CliError(`${FLAG_OF[err.option] ?? err.option}: ${err.reason}`);
    throw err;
  }

  const pool = new InferencePool({ config: runtimeConfig() });
  try {
    const dense = await OnnxEvaluator.create({
      pool,
      model: source.model,
      layout,
      granularity: spec.granularity,
      cacheDir: join(work, 'cache'),
    });
    const windows = poolWindows(spec, source.tokenizer, 4 * spec.calibration + spec.heldOut);

    progress.stage(
      `calibration: ${windows.count} windows of ${spec.seqLen} tokens, ${spec.sampling} sampling`,
    );
    const calibrationFile = join(out, 'calibration.json');
    const calibration =
      readJson<CalibrationSet & { poolSha256: string }>(calibrationFile) ??
      (await time('calibration', async () => {
        const states =
          spec.sampling === 'ccds'
            ? await dense.pooledStates(windows, signal)
            : new Float32Array(windows.count);
        const set = selectCalibration({
          states,
          dim: spec.sampling === 'ccds' ? layout.hiddenSize : 1,
          calibration: spec.calibration,
          heldOut: spec.heldOut,
          clusters: Math.min(spec.clusters, spec.calibration),
          sampling: spec.sampling,
          seed: spec.seed,
        });
        const saved = { ...set, poolSha256: windows.sha256 };
        writeJson(calibrationFile, saved);
        return saved;
      }));
    if (calibration.poolSha256 !== windows.sha256)
      throw new CliError(`--resume: the data no longer gives the windows this run was calibrated on`);
    const calibWindows = windows.select(calibration.calibration);
    const heldWindows = windows.select(calibration.heldOut);
    const heldClusters = calibration.heldOut.map((i) => calibration.assignments[i]!);
    const evaluator = new FidelityEvaluator(dense, calibWindows, calibration.calibrationClusters);
    const influence = (await time('influence', () => dense.unitCosines(calibWindows, signal))).map(
      (c) => 1 - c,
    );

    // The search, then the peers on the same evaluator; a shared cache serves masks two strategies both try.
    const cache = new MemoryFitnessCache();
    const strategies = [
      spec.strategy,
      ...(spec.baselines ? PEERS[spec.granularity].filter((s) => s !== spec.strategy) : []),
    ];
    const searches: {
      name: StrategyName;
      best: { mask: string; fitness: number };
      history: GenerationRecord[];
    }[] = [];
    for (const name of strategies) {
      const strategy = createStrategy(name, space, { seed: spec.seed, budget: spec.budget, influence });
      const file = join(out, 'checkpoints', `${name}.json`);
      const resume = readJson<SearchCheckpoint>(file);
      const total =
        name === 'sleb' || name === 'blockpruner' ? space.prunable.length * space.pruned : spec.budget;
      progress.start(name, total);
      const outcome = await time(`search:${name}`, () =>
        runSearch({
          strategy,
          evaluator,
          objective: spec.objective,
          cache,
          signal,
          ...(resume ? { resume } : {}),
          checkpoint: (c) => writeJson(file, c),
          onProgress: (r) => progress.generation(name, r, total),
        }),
      );
      progress.stop();
      if (outcome.stopped) throw new Interrupted(`stopped during the ${name} search`);
      searches.push({ name, best: outcome.best!, history: outcome.history });
    }

    const main = searches[0]!;
    progress.stage(`export: pruning ${space.pruned} of ${space.size} units (${main.best.mask})`);
    const prunedPath = join(out, 'model.onnx');
    await time('export', () => {
      const pruned = pruneModel(source.model.proto, layout, main.best.mask, {
        granularity: spec.granularity,
        sourceSha256: source.model.sha256,
        expectedPruned: space.pruned,
      });
      writeModel(pruned, prunedPath);
    });
    const prunedUnits = space.prunedUnits(main.best.mask).map((i) => units[i]!.id);
    writeJson(join(out, 'mask.json'), {
      mask: main.best.mask,
      granularity: spec.granularity,
      pruned: prunedUnits,
      units: units.map((u) => u.id),
    });

    // The exported file, read back once: evaluated, and timed, as a user would load it.
    const prunedModel = readModel(prunedPath);
    const prunedLayout = discoverLayers(prunedModel.proto);

    progress.stage(`final evaluation: ${heldWindows.count} held-out windows`);
    const rows = await time('evaluation', async () => {
      const masks = [dense.allKept, ...searches.map((s) => s.best.mask)];
      const results = await dense.evaluate(masks, heldWindows, { clusterOf: heldClusters, signal });
      const physical = await OnnxEvaluator.create({
        pool,
        model: prunedModel,
        layout: prunedLayout,
        granularity: spec.granularity,
        cacheDir: join(work, 'cache'),
      });
      const [phys] = await physical.evaluate([physical.allKept], heldWindows, { signal });
      return {
        consistency: Math.abs(phys!.nllSum - results[1]!.nllSum) / results[1]!.nllSum,
        prunedPerplexity: Math.exp(phys!.nllSum / phys!.count),
        rows: masks.map((mask, i): ReportRow => {
          const r = results[i]!;
          const removed = space.prunedUnits(mask).reduce((n, u) => n + units[u]!.params, 0);
          return {
            method: i === 0 ? 'dense' : searches[i - 1]!.name,
            mask,
            perplexity: Math.exp(r.nllSum / r.count),
            clusterPerplexity: (r.clusters ?? []).map((c) =>
              c.count > 0 ? Math.exp(c.nllSum / c.count) : null,
            ),
            calibrationFitness: i === 0 ? null : searches[i - 1]!.best.fitness,
            evaluations: i === 0 ? 0 : (searches[i - 1]!.history.at(-1)?.evaluations ?? 0),
            params: layout.totalParams - removed,
            tasks: {},
          };
        }),
      };
    });
    // The exported model's own perplexity is the one reported for the search's mask.
    rows.rows[1]!.perplexity = rows.prunedPerplexity;

    for (const task of spec.tasks) {
      progress.stage(`zero-shot: ${task} (${spec.taskLimit} items)`);
      const items = readTask(task, resolveDataFile(TASKS[task]), { limit: spec.taskLimit });
      await time(`task:${task}`, async () => {
        for (const row of rows.rows) {
          const r = await scoreMultipleChoice(dense, source.tokenizer, items, row.mask, signal);
          row.tasks[task] = {
            acc: r.acc,
            accStderr: r.accStderr,
            accNorm: r.accNorm,
            accNormStderr: r.accNormStderr,
            n: r.n,
          };
        }
      });
    }

    progress.stage('latency: prefill and decode, dense vs pruned');
    const latency = await time('latency', async () => {
      const options = { seqLen: Math.min(spec.seqLen, 128), decodeTokens: 32, warmup: 2, repeats: 5 };
      const denseLatency = await measureLatency(pool, source.model.path, layout, options);
      const prunedLatency = await measureLatency(pool, prunedPath, prunedLayout, options);
      return { dense: denseLatency, pruned: prunedLatency } satisfies Record<string, LatencyResult>;
    });

    const report: PruneReport = {
      spec,
      protocol: {
        seqLen: spec.seqLen,
        bos: source.tokenizer.bosId !== undefined,
        windows: { pool: windows.count, calibration: calibWindows.count, heldOut: heldWindows.count },
        prediction: 'every token after the first of a window; perplexity = exp(ΣNLL / Σcount)',
        sampling: spec.sampling,
        objective: spec.objective,
      },
      model: {
        path: source.model.path,
        sha256: source.model.sha256,
        layers: layout.layers,
        units: units.map((u) => ({ id: u.id, params: u.params })),
        params: layout.totalParams,
      },
      calibration: {
        clusters: calibration.clusterSizes.map((size, c) => ({
          size,
          calibration: calibration.calibrationClusters.filter((x) => x === c).length,
          heldOut: heldClusters.filter((x) => x === c).length,
        })),
        calibrationWindows: calibration.calibration,
        heldOutWindows: calibration.heldOut,
        assignments: calibration.assignments,
        poolSha256: calibration.poolSha256,
      },
      influence,
      searches: searches.map((s) => ({ strategy: s.name, best: s.best, history: s.history })),
      result: {
        mask: main.best.mask,
        pruned: prunedUnits,
        model: 'model.onnx',
        consistency: rows.consistency,
      },
      table: rows.rows,
      latency,
      versions: { evop: '0.1.0', node: process.version, onnxruntime: onnxruntimeVersion() },
      timings: { ...timings, total: (Date.now() - started) / 1000 },
    };
    writeJson(join(out, 'report.json'), report);
    writeFileSync(join(out, 'report.html'), renderReportHtml(report));
    return report;
  } finally {
    await pool.close();
  }
}
