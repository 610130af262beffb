import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '@evop/config';
import type { StrategyName } from '@evop/core';
import { type ArtifactClient, loadTokenizer, readCorpus, tokenizerFiles } from '@evop/data';
import { type Database, PostgresCheckpoints, PostgresFitnessCache } from '@evop/db';
import type { DecoderLayout } from '@evop/onnx';
import {
  assembleReport,
  type Calibration,
  calibrate,
  PipelineError,
  planSearch,
  poolWindows,
  runSearches,
  type SearchSpec,
  splitWindows,
  strategiesOf,
  summaryOf,
} from '@evop/pipeline';
import {
  embedResult,
  exportResult,
  type JobEvent,
  QueueEvaluator,
  type QueueName,
  runTask,
} from '@evop/queue';
import type { Queue, QueueEvents } from 'bullmq';

/** The queues a coordinator sends tasks to, with their events. */
export type TaskQueues = Record<Exclude<QueueName, 'prune'>, { queue: Queue; events: QueueEvents }>;

export interface JobRunnerDeps {
  db: Database;
  artifacts: ArtifactClient;
  queues: TaskQueues;
  publish: (jobId: string, event: JobEvent) => Promise<void>;
  log: Logger;
  /** Folder for the coordinator's own files (tokenized corpora). */
  workDir: string;
  /** Masks per fitness task. */
  masksPerTask?: number;
}

// Share of the progress bar each stage fills.
const CALIBRATION_END = 0.05;
const SEARCH_END = 0.9;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * One pruning job, start to end, with the pipeline `evop prune` runs: calibration through `embed` tasks, the
 * searches through `fitness` tasks and the shared PostgreSQL fitness cache with a checkpoint per generation,
 * finalize through an `export` task. Every stage's result is in PostgreSQL before the next starts, so a job
 * taken over by another coordinator continues where this one stopped.
 */
export async function runJob(jobId: string, deps: JobRunnerDeps, signal: AbortSignal): Promise<void> {
  const { db, artifacts, queues, log } = deps;
  const job = await db.job.findUniqueOrThrow({
    where: { id: jobId },
    include: { model: true, dataset: true },
  });
  const spec = job.spec as unknown as SearchSpec;
  const model = job.model;
  const layout = model.layout as unknown as DecoderLayout;
  const startedAt = job.startedAt ?? new Date(); // a resumed job keeps the start of its first run
  const status = async (stage: string, progress: number) => {
    await db.job.update({
      where: { id: jobId },
      data: { status: 'running', stage, progress, startedAt },
    });
    await deps.publish(jobId, { type: 'status', status: 'running', stage, progress });
  };
  const { units, space } = planSearch(layout, spec);
  const taskBase = { jobId, modelSha256: model.manifestSha256, granularity: spec.granularity };

  await status('calibration', 0);
  const tokenizer = loadTokenizer(
    await artifacts.linked(
      tokenizerFiles(model.tokenizerName, model.tokenizerSha256, model.tokenizerConfigSha256),
      join(deps.workDir, 'tokenizers', `${model.tokenizerSha256}-${model.tokenizerConfigSha256 ?? 'none'}`),
    ),
  );
  const corpus = await artifacts.linked(
    [{ name: job.dataset.format === 'jsonl' ? 'corpus.jsonl' : 'corpus.txt', sha256: job.dataset.sha256 }],
    join(deps.workDir, 'datasets', job.dataset.sha256),
  );
  const pool = poolWindows([readCorpus(corpus)], tokenizer, spec);
  const calibrationRow =
    (await db.calibration.findUnique({ where: { jobId } })) ??
    (await (async () => {
      const poolSha256 = await artifacts.upload(pool.serialize());
      const states =
        spec.sampling === 'ccds'
          ? Float32Array.from(
              await runTask(
                queues.embed.queue,
                queues.embed.events,
                { ...taskBase, windowsSha256: poolSha256, kind: 'pooled' as const },
                { result: embedResult, signal },
              ),
            )
          : undefined;
      const set = calibrate(spec, pool, states, layout.hiddenSize);
      const sets = splitWindows(pool, set);
      const upload = (value: unknown) => artifacts.upload(Buffer.from(JSON.stringify(value)));
      const searchSha256 = await artifacts.upload(sets.search.windows.serialize());
      const cosines = await runTask(
        queues.embed.queue,
        queues.embed.events,
        { ...taskBase, windowsSha256: searchSha256, kind: 'cosines' as const },
        { result: embedResult, signal },
      );
      return db.calibration.create({
        data: {
          jobId,
          poolSha256,
          searchSha256,
          searchClustersSha256: await upload(sets.search.clusters),
          heldOutSha256: await artifacts.upload(sets.heldOut.windows.serialize()),
          heldOutClustersSha256: await upload(sets.heldOut.clusters),
          set: set as never,
          influence: JSON.stringify(cosines.map((c) => 1 - c)),
        },
      });
    })());
  const calibration = calibrationRow.set as unknown as Calibration;
  if (calibration.poolSha256 !== pool.sha256)
    throw new PipelineError(
      'datasetId',
      'the dataset no longer gives the windows this job was calibrated on',
    );
  const influence = JSON.parse(calibrationRow.influence) as number[];
  log.info({ job: jobId, clusters: calibration.clusterSizes }, 'calibrated');

  await status('search', CALIBRATION_END);
  const strategies = strategiesOf(spec);
  const evaluationSet = sha256(`${calibrationRow.searchSha256}:${calibrationRow.searchClustersSha256}`);
  const totals = new Map<string, number>();
  const cache = new PostgresFitnessCache(db, model.manifestSha256, evaluationSet, { deferWrites: true });
  const checkpoints = new PostgresCheckpoints(db, jobId, {
    cache,
    onSaved: async (tx, strategy, record) => {
      const done =
        strategies.indexOf(strategy as StrategyName) +
        Math.min(1, record.spent / (totals.get(strategy) ?? 1));
      const progress = CALIBRATION_END + ((SEARCH_END - CALIBRATION_END) * done) / strategies.length;
      const current = await tx.job.update({
        where: { id: jobId },
        data: {
          progress,
          ...(strategy === spec.strategy && record.best ? { best: { strategy, ...record.best } } : {}),
        },
      });
      if (current.cancelRequested) throw new CancelRequested();
    },
  });
  const searches = await runSearches({
    spec,
    space,
    evaluator: new QueueEvaluator({
      ...queues.fitness,
      task: {
        ...taskBase,
        windowsSha256: calibrationRow.searchSha256,
        clustersSha256: calibrationRow.searchClustersSha256,
      },
      ...(deps.masksPerTask ? { masksPerTask: deps.masksPerTask } : {}),
    }),
    influence,
    cache,
    checkpoints: {
      load: (strategy) => checkpoints.load(strategy),
      save: async (strategy, checkpoint) => {
        await checkpoints.save(strategy, checkpoint);
        await deps.publish(jobId, { type: 'generation', strategy, record: checkpoint.history.at(-1)! });
      },
    },
    progress: {
      start: (strategy, total) => totals.set(strategy, total),
      generation: () => {},
      stop: () => {},
    },
    signal,
  });

  await status('finalize', SEARCH_END);
  const finalized = await runTask(
    queues.export.queue,
    queues.export.events,
    {
      jobId,
      modelSha256: model.manifestSha256,
      tokenizerSha256: model.tokenizerSha256,
      tokenizerName: model.tokenizerName,
      ...(model.tokenizerConfigSha256 ? { tokenizerConfigSha256: model.tokenizerConfigSha256 } : {}),
      spec,
      heldOutSha256: calibrationRow.heldOutSha256,
      heldOutClustersSha256: calibrationRow.heldOutClustersSha256,
      searches: searches.map(summaryOf),
    },
    { result: exportResult, signal },
  );
  const report = assembleReport({
    spec: { ...spec, model: model.id, dataset: job.datasetId },
    bos: tokenizer.bosId !== undefined,
    model: {
      path: model.name,
      sha256: model.sha256,
      layers: layout.layers,
      params: layout.totalParams,
      units,
    },
    poolWindows: pool.count,
    calibration,
    influence,
    searches,
    modelFile: 'model.onnx',
    finalized: { ...finalized, path: 'model.onnx' },
    timings: { total: (Date.now() - startedAt.getTime()) / 1000 },
  });
  await db.$transaction([
    db.result.create({
      data: {
        jobId,
        mask: finalized.mask,
        modelManifestSha256: finalized.modelManifestSha256,
        report: JSON.stringify(report),
      },
    }),
    db.job.update({
      where: { id: jobId },
      data: { status: 'succeeded', stage: null, progress: 1, finishedAt: new Date() },
    }),
  ]);
  await deps.publish(jobId, { type: 'status', status: 'succeeded', stage: null, progress: 1 });
}

/** The job's cancel flag was found set while saving a checkpoint. */
export class CancelRequested extends Error {
  override readonly name = 'CancelRequested';
}
