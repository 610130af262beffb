import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '@evop/config';
import { type ArtifactClient, type TokenWindows, tokenizerFiles } from '@evop/data';
import { type Database, PostgresCheckpoints, PostgresFitnessCache, type Transaction } from '@evop/db';
import type { DecoderLayout } from '@evop/onnx';
import {
  type Calibration,
  type CalibrationThreads,
  frontDir,
  frontSearchName,
  type PipelineBackend,
  PipelineError,
  type PipelineStore,
  planSearch,
  runPrunePipeline,
  type SearchSpec,
  strategiesOf,
} from '@evop/pipeline/control';
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
  /** Where the corpus is tokenized and k-means runs, off the event loop. */
  threads: CalibrationThreads;
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
 * One pruning job, start to end: the pipeline `evop prune` runs (packages/pipeline `runPrunePipeline`), with
 * calibration through `embed` tasks, the searches through `fitness` tasks and the shared PostgreSQL fitness cache
 * with a checkpoint per generation, finalize through an `export` task. Every stage's result is in PostgreSQL
 * before the next starts, so a job taken over by another coordinator continues where this one stopped.
 */
export async function runJob(
  jobId: string,
  runToken: string,
  deps: JobRunnerDeps,
  signal: AbortSignal,
): Promise<void> {
  const { db, artifacts, queues, log } = deps;
  /**
   * Writes the job's row only while this run holds the job and the job is not finished: a superseded run, or one
   * whose job ended meanwhile, stops without writing (a finished row is never made `running` again).
   */
  const fenced = async (
    tx: Transaction | Database,
    data: Parameters<Database['job']['updateMany']>[0]['data'],
  ) => {
    const { count } = await tx.job.updateMany({
      where: { id: jobId, runToken, status: { in: ['queued', 'running'] } },
      data,
    });
    if (count === 0) throw new SupersededRun();
  };
  const job = await db.job.findUniqueOrThrow({
    where: { id: jobId },
    include: { model: true, dataset: true },
  });
  // A cancel published before this run listened for it (between the processor reading the row and registering
  // the run) is on the row: without this the job would wait on its tasks for good.
  if (job.cancelRequested) throw new CancelRequested();
  const spec = job.spec as unknown as SearchSpec;
  const model = job.model;
  const layout = model.layout as unknown as DecoderLayout;
  const startedAt = job.startedAt ?? new Date(); // a resumed job keeps the start of its first run
  const status = async (stage: string, progress: number) => {
    await fenced(db, { status: 'running', stage, progress, startedAt });
    await deps.publish(jobId, { type: 'status', status: 'running', stage, progress });
  };

  const tokenizer = await artifacts.linked(
    tokenizerFiles(model.tokenizerName, model.tokenizerSha256, model.tokenizerConfigSha256),
    join(deps.workDir, 'tokenizers', `${model.tokenizerSha256}-${model.tokenizerConfigSha256 ?? 'none'}`),
  );
  const corpusOf = (dataset: { format: string; sha256: string }) =>
    artifacts.linked(
      [{ name: dataset.format === 'jsonl' ? 'corpus.jsonl' : 'corpus.txt', sha256: dataset.sha256 }],
      join(deps.workDir, 'datasets', dataset.sha256),
    );
  // Running from here on: the row says what is being done rather than 'queued' while the corpus is read.
  await status(`calibration: tokenizing ${job.dataset.name}`, 0);
  // Tokenizing is CPU-bound for as long as the windows need: on a thread, so that this job's lock is renewed.
  const { pool, corpusWindows, bos } = await deps.threads.poolWindows(
    [await corpusOf(job.dataset)],
    tokenizer,
    spec,
    signal,
  );
  // The out-of-domain datasets, each on windows of its own (as many as the held-out set), as `evop prune
  // --eval-data` reads them.
  const evalDatasets = await db.dataset.findMany({ where: { id: { in: job.evalDatasetIds } } });
  const outOfDomain = [];
  for (const id of job.evalDatasetIds) {
    const dataset = evalDatasets.find((d) => d.id === id);
    if (!dataset) throw new PipelineError('evalDatasetIds', `dataset '${id}' no longer exists`);
    await status(`calibration: tokenizing ${dataset.name} (out of domain)`, 0);
    const windows = await deps.threads.windows(
      await corpusOf(dataset),
      tokenizer,
      spec.seqLen,
      spec.heldOut,
      signal,
    );
    if (windows.count === 0)
      throw new PipelineError('evalDatasetIds', `'${dataset.name}' gives no window of ${spec.seqLen} tokens`);
    outOfDomain.push({ name: dataset.name, windows });
  }

  // Windows and clusters travel to workers as artifacts (content-addressed: uploading again is a no-op).
  const uploaded = new Map<string, Promise<string>>();
  const artifactOf = (key: string, bytes: () => Uint8Array) => {
    if (!uploaded.has(key)) uploaded.set(key, artifacts.upload(bytes()));
    return uploaded.get(key)!;
  };
  const windowsArtifact = (w: TokenWindows) => artifactOf(`windows:${w.sha256}`, () => w.serialize());
  const jsonArtifact = (value: unknown) => {
    const text = JSON.stringify(value);
    return artifactOf(`json:${sha256(text)}`, () => Buffer.from(text));
  };
  // Workers use the layout the API stored rather than running discovery again.
  const layoutSha256 = await jsonArtifact(layout);
  const taskBase = { jobId, modelSha256: model.manifestSha256, layoutSha256, granularity: spec.granularity };
  const embed = async (windows: TokenWindows, kind: 'pooled' | 'cosines') =>
    runTask(
      queues.embed.queue,
      queues.embed.events,
      { ...taskBase, windowsSha256: await windowsArtifact(windows), kind },
      { result: embedResult, signal },
    );

  // The searches in the order they run: the spec's strategy and its peers, then the front's points.
  const strategies = [
    ...strategiesOf(spec),
    ...planSearch(layout, spec).front.map((space) => frontSearchName(spec.strategy, space.pruned)),
  ];
  const totals = new Map<string, number>();
  /** The search's stage and progress after a strategy's generation: written with its checkpoint, then published. */
  const searchStatus = (strategy: string, record: { generation: number; spent: number }) => {
    const k = strategies.indexOf(strategy);
    const total = totals.get(strategy) ?? 1;
    const done = k + Math.min(1, record.spent / total);
    return {
      stage:
        `search (${strategy}${strategies.length > 1 ? `, search ${k + 1} of ${strategies.length}` : ''}): ` +
        `generation ${record.generation}, ${Math.round(record.spent)} of ${Math.round(total)} evaluations`,
      progress: CALIBRATION_END + ((SEARCH_END - CALIBRATION_END) * done) / strategies.length,
    };
  };
  let exportedManifest = ''; // the pruned model's manifest, as the export task reports it
  let exportedPoints: { units: number; mask: string; modelManifestSha256: string }[] = []; // the front's
  const backend: PipelineBackend = {
    calibrate: (...args) => deps.threads.calibrate(...args),
    pooledStates: async (windows) => Float32Array.from(await embed(windows, 'pooled')),
    unitCosines: (calibration) => embed(calibration.windows, 'cosines'),
    search: async (search) => {
      const windowsSha256 = await windowsArtifact(search.windows);
      const clustersSha256 = await jsonArtifact(search.clusters);
      const cache = new PostgresFitnessCache(
        db,
        model.manifestSha256,
        sha256(`${windowsSha256}:${clustersSha256}`),
        { deferWrites: true },
      );
      const checkpoints = new PostgresCheckpoints(db, jobId, {
        cache,
        onSaved: async (tx, strategy, record) => {
          await fenced(tx, {
            ...searchStatus(strategy, record),
            ...(strategy === spec.strategy && record.best ? { best: { strategy, ...record.best } } : {}),
          });
          const current = await tx.job.findUniqueOrThrow({ where: { id: jobId } });
          if (current.cancelRequested) throw new CancelRequested();
        },
      });
      return {
        evaluator: new QueueEvaluator({
          ...queues.fitness,
          task: { ...taskBase, windowsSha256, clustersSha256, calibrationWindows: search.calibration },
          ...(deps.masksPerTask ? { masksPerTask: deps.masksPerTask } : {}),
        }),
        cache,
        checkpoints: {
          load: (strategy) => checkpoints.load(strategy),
          save: async (strategy, checkpoint) => {
            await checkpoints.save(strategy, checkpoint);
            const record = checkpoint.history.at(-1)!;
            await deps.publish(jobId, { type: 'generation', strategy, record });
            await deps.publish(jobId, {
              type: 'status',
              status: 'running',
              ...searchStatus(strategy, record),
            });
          },
        },
      };
    },
    finalize: async ({ searches, front, heldOut, datasets }) => {
      const {
        modelManifestSha256,
        front: points,
        ...finalized
      } = await runTask(
        queues.export.queue,
        queues.export.events,
        {
          jobId,
          modelSha256: model.manifestSha256,
          layoutSha256,
          tokenizerSha256: model.tokenizerSha256,
          tokenizerName: model.tokenizerName,
          ...(model.tokenizerConfigSha256 ? { tokenizerConfigSha256: model.tokenizerConfigSha256 } : {}),
          spec,
          heldOutSha256: await windowsArtifact(heldOut.windows),
          heldOutClustersSha256: await jsonArtifact(heldOut.clusters),
          datasets: await Promise.all(
            datasets.map(async ({ name, domain, windows }) => ({
              name,
              domain,
              windowsSha256: await windowsArtifact(windows),
            })),
          ),
          searches,
          front,
        },
        {
          result: exportResult,
          signal,
          // The worker's finalize steps (export, final evaluation, zero-shot, latency) as the job's stage.
          onProgress: (step) => {
            if (typeof step === 'string')
              status(step, SEARCH_END).catch((err) =>
                log.warn({ job: jobId, err: (err as Error).message }, 'stage not recorded'),
              );
          },
        },
      );
      exportedManifest = modelManifestSha256;
      exportedPoints = points.map(({ units, mask, modelManifestSha256 }) => ({
        units,
        mask,
        modelManifestSha256,
      }));
      return {
        ...finalized,
        path: 'model.onnx',
        front: points.map(({ modelManifestSha256: _, ...p }) => ({ ...p, dir: frontDir(p.units) })),
      };
    },
  };
  const store: PipelineStore = {
    loadCalibration: async () => {
      const row = await db.calibration.findUnique({ where: { jobId } });
      return row
        ? { calibration: row.set as unknown as Calibration, influence: JSON.parse(row.influence) as number[] }
        : undefined;
    },
    saveCalibration: async ({ calibration, influence }, sets) => {
      await db.calibration.create({
        data: {
          jobId,
          poolSha256: await windowsArtifact(pool),
          searchSha256: await windowsArtifact(sets.search.windows),
          searchClustersSha256: await jsonArtifact(sets.search.clusters),
          heldOutSha256: await windowsArtifact(sets.heldOut.windows),
          heldOutClustersSha256: await jsonArtifact(sets.heldOut.clusters),
          set: calibration as never,
          influence: JSON.stringify(influence),
        },
      });
      log.info({ job: jobId, clusters: calibration.clusterSizes }, 'calibrated');
    },
    saveSearched: async () => {}, // each generation's checkpoint holds the best so far
  };
  const { finalized, report } = await runPrunePipeline({
    spec,
    layout,
    pool,
    corpora: [{ name: job.dataset.name, windows: corpusWindows[0]! }],
    outOfDomain,
    backend,
    store,
    progress: {
      start: (strategy, total) => totals.set(strategy, total),
      generation: () => {},
      stop: () => {},
    },
    stage: (stage) =>
      stage === 'calibration'
        ? status(`calibration: ${pool.count} windows of ${spec.seqLen} tokens, ${spec.sampling} sampling`, 0)
        : stage === 'search'
          ? status(`search (${strategies[0]}): starting`, CALIBRATION_END)
          : status('finalize: waiting for a worker', SEARCH_END),
    signal,
    startedAt: startedAt.getTime(),
    report: {
      spec: { ...spec, model: model.id, dataset: job.datasetId, evalDatasets: job.evalDatasetIds },
      model: { name: model.name, path: model.name, sha256: model.sha256 },
      bos,
      modelFile: 'model.onnx',
    },
  });
  await db.$transaction(async (tx) => {
    await fenced(tx, { status: 'succeeded', stage: null, progress: 1, finishedAt: new Date() });
    await tx.result.create({
      data: {
        jobId,
        mask: finalized.mask,
        modelManifestSha256: exportedManifest,
        report: JSON.stringify(report),
        points: exportedPoints,
      },
    });
  });
  await deps.publish(jobId, { type: 'status', status: 'succeeded', stage: null, progress: 1 });
}

/** A newer run of the job started (here or on another coordinator): this one stops and writes nothing more. */
export class SupersededRun extends Error {
  override readonly name = 'SupersededRun';
  constructor() {
    super('a newer run of this job took it over');
  }
}

/** The job's cancel flag was found set while saving a checkpoint. */
export class CancelRequested extends Error {
  override readonly name = 'CancelRequested';
}
