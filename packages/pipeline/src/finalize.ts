import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveDataFile } from '@evop/config';
import type { SearchSpace } from '@evop/core';
import { readTask, TASKS, type Tokenizer, type TokenWindows } from '@evop/data';
import {
  type DecoderLayout,
  discoverLayers,
  type LoadedModel,
  pruneModel,
  readModel,
  type Unit,
  writeModelAsync,
} from '@evop/onnx';
import {
  compareLatency,
  type InferencePool,
  type LatencyComparison,
  type MaskEvaluation,
  OnnxEvaluator,
  onnxruntimeVersion,
  scoreMultipleChoice,
} from '@evop/runtime';
import type { ClusteredWindows } from './calibration.ts';
import { frontDir } from './front.ts';
import type { FrontPoint, ReportRow, TaskScore } from './report.ts';
import type { SearchSpec } from './search-spec.ts';
import type { SearchSummary } from './searches.ts';

/** Where finalize keeps each stage's result, so that a resumed run redoes only what failed or never ran. */
export interface StageStore {
  load<T>(stage: string): Promise<T | undefined>;
  save(stage: string, value: unknown): Promise<void>;
}

/** Keeps stage results for the life of one run only (a service task: its result is uploaded whole). */
export function memoryStages(): StageStore {
  const saved = new Map<string, unknown>();
  return {
    load: async <T>(stage: string) => saved.get(stage) as T | undefined,
    save: async (stage, value) => {
      saved.set(stage, value);
    },
  };
}

/** A stage that failed after the pruned model was written; the run's other results stand. */
export interface StageFailure {
  stage: string;
  error: string;
}

/** A data set whose held-out perplexity is reported on its own (`EvalDataset`), with its windows. */
export interface EvalSet {
  name: string;
  domain: 'in' | 'out';
  windows: TokenWindows;
}

export interface FinalizeOptions {
  pool: InferencePool;
  model: LoadedModel;
  layout: DecoderLayout;
  tokenizer: Tokenizer;
  spec: SearchSpec;
  units: readonly Unit[];
  space: SearchSpace;
  /** The spec's search first, then its peers: the first one's best mask is exported. */
  searches: readonly SearchSummary[];
  /** The front's other points (`runFront`): each best mask exported to `front/<units>-units/` and measured. */
  front?: readonly SearchSummary[];
  heldOut: ClusteredWindows;
  /** Data sets measured one by one besides the held-out windows as a whole (default: none). */
  datasets?: readonly EvalSet[];
  /** Where model.onnx (and its external data, if any) is written. */
  outDir: string;
  /** Folder for instrumented graphs. */
  cacheDir: string;
  /** Results of the stages done already (default: none kept). */
  stages?: StageStore;
  signal: AbortSignal;
  stage?: (message: string) => void;
  /** Seconds per stage are added here. */
  timings?: Record<string, number>;
}

export interface Finalized {
  /** The exported model's path. */
  path: string;
  mask: string;
  pruned: string[];
  /** |physical − gated| / gated held-out NLL of the exported mask. */
  consistency: number;
  table: ReportRow[];
  /** Null when the latency stage failed (see `failed`). */
  latency: LatencyComparison | null;
  /** Zero-shot and latency stages that failed: named here, completed by a resumed run. */
  failed: StageFailure[];
  /** The onnxruntime that measured these numbers (a worker's, in the service). */
  onnxruntime: string;
  /** The front's other points by unit count (none without a front), each with its model's folder. */
  front: (FrontPoint & { dir: string })[];
}

/**
 * The last stage: the best mask physically pruned out of the model and written, then the dense model, every
 * strategy's best mask and the exported file itself measured on the held-out windows (and zero-shot tasks),
 * and prefill / decode latency timed on dense and exported models as a user would load them. Export and
 * held-out evaluation must succeed (their error ends the run); a zero-shot task or the latency that fails is
 * recorded in `failed` and the rest goes on, so a finished search is never lost to a later stage.
 */
export async function finalize(options: FinalizeOptions): Promise<Finalized> {
  const { pool, model, layout, tokenizer, spec, units, space, searches, heldOut, signal } = options;
  const stage = options.stage ?? (() => {});
  const timings = options.timings ?? {};
  const store = options.stages ?? memoryStages();
  const failed: StageFailure[] = [];
  /** Runs a stage unless its result is stored; an optional stage's error is recorded, not thrown. */
  const run = async <T>(name: string, fn: () => Promise<T>, optional = false): Promise<T | undefined> => {
    const saved = await store.load<T>(name);
    if (saved !== undefined) return saved;
    // A stop (Ctrl-C, a cancelled job) takes effect between steps, not only inside the evaluator's batches.
    signal.throwIfAborted();
    const t = Date.now();
    try {
      const result = await fn();
      timings[name] = (Date.now() - t) / 1000;
      await store.save(name, result);
      return result;
    } catch (err) {
      if (!optional || signal.aborted) throw err;
      failed.push({ stage: name, error: (err as Error).message });
      return undefined;
    }
  };
  const main = searches[0]!;
  const front = options.front ?? [];
  /** Writes `mask` pruned out of the model to `path`, unless the stage says that file holds it already. */
  const exportMask = async (key: string, mask: string, path: string) => {
    // Not kept as a stage result: the file itself says whether it is there.
    if ((await store.load<string>(key)) === mask && existsSync(path)) return;
    signal.throwIfAborted();
    const units = space.prunedUnits(mask).length;
    stage(`export: pruning ${units} of ${space.size} units (${mask})`);
    const t = Date.now();
    mkdirSync(dirname(path), { recursive: true });
    // Awaited chunk by chunk: a worker writing a pruned model of many GiB goes on renewing its task's lock.
    await writeModelAsync(
      pruneModel(model.proto, layout, mask, {
        granularity: spec.granularity,
        sourceSha256: model.sha256,
        expectedPruned: units,
      }),
      path,
    );
    timings[key] = (Date.now() - t) / 1000;
    await store.save(key, mask);
  };
  const path = join(options.outDir, 'model.onnx');
  await exportMask('export', main.best.mask, path);
  const points = front.map((p) => {
    const units = space.prunedUnits(p.best.mask).length;
    return {
      summary: p,
      units,
      dir: frontDir(units),
      path: join(options.outDir, frontDir(units), 'model.onnx'),
    };
  });
  for (const p of points) await exportMask(`export:${p.dir}`, p.summary.best.mask, p.path);
  // The exported file, read back once: evaluated, and timed, as a user would load it.
  const exported = readModel(path);
  const exportedLayout = discoverLayers(exported.proto);
  const dense = await OnnxEvaluator.create({
    pool,
    model,
    layout,
    granularity: spec.granularity,
    cacheDir: options.cacheDir,
  });

  const masks = [dense.allKept, ...searches.map((s) => s.best.mask)];
  // The front's points are measured on the gated graph with the table's masks (the exported file of the spec's
  // target checks that the two agree: `consistency`).
  const frontMasks = points.map((p) => p.summary.best.mask);
  const sets = options.datasets ?? [];
  // A set that is the held-out set itself (a single --data corpus) is measured once; an empty one not at all.
  const measured = (set: EvalSet) => set.windows.count > 0 && set.windows.sha256 !== heldOut.windows.sha256;
  const evaluation = (await run('evaluation', async () => {
    stage(
      `final evaluation: ${heldOut.windows.count} held-out windows` +
        (sets.length ? `, ${sets.map((d) => `${d.name} (${d.windows.count})`).join(', ')}` : ''),
    );
    const all = [...masks, ...frontMasks];
    const results = await dense.evaluate(all, heldOut.windows, { clusterOf: heldOut.clusters, signal });
    const denseBySet: (MaskEvaluation[] | undefined)[] = [];
    for (const set of sets)
      denseBySet.push(measured(set) ? await dense.evaluate(all, set.windows, { signal }) : undefined);
    // One model's weights in memory at a time: the dense model's sessions go before the pruned file's load.
    await dense.unload();
    // The exported file's graphs are needed once: made in a folder of their own, removed after.
    mkdirSync(options.cacheDir, { recursive: true });
    const physicalDir = mkdtempSync(join(options.cacheDir, 'exported-'));
    let phys: MaskEvaluation | undefined;
    const physBySet: (MaskEvaluation | undefined)[] = [];
    try {
      const physical = await OnnxEvaluator.create({
        pool,
        model: exported,
        layout: exportedLayout,
        granularity: spec.granularity,
        cacheDir: physicalDir,
      });
      [phys] = await physical.evaluate([physical.allKept], heldOut.windows, { signal });
      for (const set of sets)
        physBySet.push(
          measured(set)
            ? (await physical.evaluate([physical.allKept], set.windows, { signal }))[0]
            : undefined,
        );
      await physical.unload();
    } finally {
      rmSync(physicalDir, { recursive: true, force: true });
    }
    const perplexity = (r: { nllSum: number; count: number }) => Math.exp(r.nllSum / r.count);
    const table = masks.map((mask, i): ReportRow => {
      // The exported model's own numbers for the search's mask, the gated model's for the others.
      const r = i === 1 ? phys! : results[i]!;
      const onSet = (set: EvalSet, k: number) => {
        if (set.windows.count === 0) return null;
        if (!measured(set)) return perplexity(r);
        return perplexity(i === 1 ? physBySet[k]! : denseBySet[k]![i]!);
      };
      const removed = space.prunedUnits(mask).reduce((n, u) => n + units[u]!.params, 0);
      return {
        method: i === 0 ? 'dense' : searches[i - 1]!.name,
        mask,
        perplexity: perplexity(r),
        clusterPerplexity: (results[i]!.clusters ?? []).map((c) => (c.count > 0 ? perplexity(c) : null)),
        datasets: sets.map(onSet),
        calibrationFitness: i === 0 ? null : searches[i - 1]!.best.fitness,
        evaluations: i === 0 ? 0 : searches[i - 1]!.evaluations,
        params: layout.totalParams - removed,
        tasks: {},
      };
    });
    const frontNumbers = frontMasks.map((_, j) => {
      const k = masks.length + j;
      return {
        perplexity: perplexity(results[k]!),
        datasets: sets.map((set, d) =>
          set.windows.count === 0 ? null : perplexity(measured(set) ? denseBySet[d]![k]! : results[k]!),
        ),
      };
    });
    return {
      table,
      front: frontNumbers,
      consistency: Math.abs(phys!.nllSum - results[1]!.nllSum) / results[1]!.nllSum,
    };
  }))!;
  // A run stopped by an earlier evop kept no per-data-set numbers: shown as '-'.
  const table = evaluation.table.map((row) => ({
    ...row,
    datasets: row.datasets ?? sets.map(() => null),
    tasks: { ...row.tasks },
  }));

  for (const task of spec.tasks) {
    const scores = await run(
      `task:${task}`,
      async () => {
        stage(`zero-shot: ${task} (${spec.taskLimit} items)`);
        const items = readTask(task, resolveDataFile(TASKS[task]), { limit: spec.taskLimit });
        const perRow: TaskScore[] = [];
        for (const row of table) {
          const { acc, accStderr, accNorm, accNormStderr, n } = await scoreMultipleChoice(
            dense,
            tokenizer,
            items,
            row.mask,
            signal,
          );
          perRow.push({ acc, accStderr, accNorm, accNormStderr, n });
        }
        return perRow;
      },
      true,
    );
    scores?.forEach((score, i) => {
      table[i]!.tasks[task] = score;
    });
  }

  await dense.unload();
  /** Prefill and decode, dense against the exported file at `pruned`, in alternating rounds. */
  const timed = (key: string, label: string, pruned: string, prunedLayout: () => DecoderLayout) =>
    run(
      key,
      async () => {
        stage(`${label}: prefill and decode, dense vs pruned in alternating rounds`);
        const result = await compareLatency(
          pool,
          { path: model.path, layout },
          { path: pruned, layout: prunedLayout() },
          { seqLen: Math.min(spec.seqLen, 128), maxSeconds: pool.config.latencyMaxSeconds, signal },
        );
        await pool.unload(model.path, pruned);
        return result;
      },
      true,
    );
  const latency = await timed('latency', 'latency', path, () => exportedLayout);
  const frontPoints: Finalized['front'] = [];
  for (const [j, p] of points.entries()) {
    const mask = p.summary.best.mask;
    const prunedUnits = space.prunedUnits(mask);
    frontPoints.push({
      units: p.units,
      dir: p.dir,
      mask,
      pruned: prunedUnits.map((i) => units[i]!.id),
      model: join(p.dir, 'model.onnx'),
      ...evaluation.front[j]!,
      calibrationFitness: p.summary.best.fitness,
      evaluations: p.summary.evaluations,
      params: layout.totalParams - prunedUnits.reduce((n, u) => n + units[u]!.params, 0),
      latency:
        (await timed(`latency:${p.dir}`, `latency (${p.dir})`, p.path, () =>
          discoverLayers(readModel(p.path).proto),
        )) ?? null,
    });
  }
  return {
    path,
    mask: main.best.mask,
    pruned: space.prunedUnits(main.best.mask).map((i) => units[i]!.id),
    consistency: evaluation.consistency,
    table,
    latency: latency ?? null,
    failed,
    onnxruntime: onnxruntimeVersion(),
    front: frontPoints,
  };
}
