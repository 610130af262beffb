/**
 * A worker process: consumes `fitness`, `embed` and `export` tasks with onnxruntime in worker threads (the
 * evaluator pool), so that the event loop stays free to renew BullMQ's locks; fetches models and token windows
 * from the API into its artifact cache; heartbeats into the worker registry. SIGTERM / SIGINT finish the tasks in
 * hand (up to EVOP_SHUTDOWN_MS), then exit 0. Environment: .env.example (REDIS_URL, EVOP_API_URL,
 * EVOP_SERVICE_TOKEN, EVOP_ARTIFACT_DIR, EVOP_QUEUE_PREFIX, EVOP_WORKER_LOCK_MS, EVOP_* runtime).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createLogger, requireServiceToken, serviceConfig, stopOnSignals } from '@evop/config';
import { ArtifactClient, ArtifactStore } from '@evop/data';
import {
  channels,
  embedTask,
  exportTask,
  fitnessTask,
  heartbeat,
  JobCancels,
  QUEUES,
  redisConnection,
  taskWorker,
  unregister,
} from '@evop/queue';
import { InferencePool } from '@evop/runtime';
import { embedProcessor } from './embed-processor.ts';
import { exportProcessor } from './export-processor.ts';
import { fitnessProcessor } from './fitness-processor.ts';
import { Models } from './models.ts';
import { WindowSets } from './window-sets.ts';
import { WorkerStats } from './worker-stats.ts';

const HEARTBEAT_MS = 5000;
const config = serviceConfig();
const id = config.workerId ?? `${hostname()}-${process.pid}`;
const log = createLogger('worker', config.logLevel).child({ worker: id });
const client = new ArtifactClient({
  store: new ArtifactStore(config.artifactDir, { maxBytes: config.workerCacheBytes }),
  apiUrl: config.apiUrl,
  token: requireServiceToken(config),
});
const cacheDir = join(config.artifactDir, '..', 'worker-cache');
const pool = new InferencePool({ warn: (m) => log.warn(m) });
const models = new Models(client, pool, cacheDir, config.workerModels);
const windows = new WindowSets(client);
const stats = new WorkerStats();
const connection = redisConnection(config.redisUrl);
// A job's cancel event stops its tasks running here (between batches), so the worker moves on at once.
const cancels = new JobCancels();
const subscriber = redisConnection(config.redisUrl);
await subscriber.subscribe(channels.cancel(config.queuePrefix));
subscriber.on('message', (_channel, jobId: string) => cancels.cancel(jobId));
// A worker that dies loses its tasks' locks this long after; they are then retried by another worker.
const options = { connection, prefix: config.queuePrefix, lockDuration: config.workerLockMs };

const fitness = fitnessProcessor(models, windows);
const embed = embedProcessor(models, windows);
const finalize = exportProcessor(models, windows, client, pool, cacheDir);
const workers = [
  taskWorker(
    QUEUES.fitness,
    fitnessTask,
    (task, job) => {
      log.debug({ task: job.id, job: task.jobId, masks: task.masks.length }, 'fitness task');
      return stats.track(QUEUES.fitness, task.masks.length, () =>
        cancels.run(task.jobId, (signal) => fitness(task, signal)),
      );
    },
    options,
  ),
  taskWorker(
    QUEUES.embed,
    embedTask,
    (task, job) => {
      log.info({ task: job.id, job: task.jobId, kind: task.kind }, 'embed task');
      return stats.track(QUEUES.embed, 0, () => cancels.run(task.jobId, (signal) => embed(task, signal)));
    },
    options,
  ),
  taskWorker(
    QUEUES.export,
    exportTask,
    (task, job) => {
      log.info({ task: job.id, job: task.jobId }, 'export task');
      // Each finalize step is the task's progress: the coordinator shows it as the job's stage.
      const stage = (message: string) => {
        job.updateProgress(message).catch((err) => log.warn({ err: err.message }, 'progress not sent'));
      };
      return stats.track(QUEUES.export, 0, () =>
        cancels.run(task.jobId, (signal) => finalize(task, signal, stage)),
      );
    },
    options,
  ),
];
for (const worker of workers)
  worker.on('failed', (job, err) => log.warn({ task: job?.id, err: err.message }, 'task failed'));
await Promise.all(workers.map((w) => w.waitUntilReady()));

const beat = () =>
  heartbeat(
    connection,
    config.queuePrefix,
    {
      id,
      host: hostname(),
      pid: process.pid,
      provider: pool.provider ?? pool.config.provider,
      device: pool.provider === 'cuda' ? `cuda:${pool.config.deviceId}` : 'cpu',
      threads: pool.threads,
      models: models.loaded,
      tasks: stats.tasks,
      rowsPerSecond: stats.rowsPerSecond,
      busy: stats.busy,
      startedAt: stats.startedAt.toISOString(),
      heartbeatAt: new Date().toISOString(),
    },
    (3 * HEARTBEAT_MS) / 1000,
  ).catch((err) => log.warn({ err: err.message }, 'heartbeat failed'));
await beat();
const timer = setInterval(beat, HEARTBEAT_MS);
log.info({ threads: pool.threads }, 'worker ready');
process.stdout.write(`evop worker ready (pid ${process.pid}, ${pool.threads} threads)\n`);

stopOnSignals(log, [
  {
    name: 'finish the tasks in hand',
    run: async () => {
      clearInterval(timer);
      await Promise.all(workers.map((w) => w.close()));
    },
    timeoutMs: config.shutdownMs,
  },
  { name: 'leave the worker registry', run: () => unregister(connection, config.queuePrefix, id) },
  { name: 'close the evaluator pool', run: () => pool.close() },
  { name: 'close the Redis connections', run: () => Promise.all([connection.quit(), subscriber.quit()]) },
]);
