/**
 * A coordinator process: takes `prune` jobs from BullMQ and runs each (calibration, search, finalize) with
 * tasks fanned out to workers; many jobs at once, each mostly waiting on its tasks. A job whose coordinator dies
 * is taken over by another when its lock expires. Cancellation arrives on a Redis channel and through the job's
 * flag in PostgreSQL. SIGTERM / SIGINT hand running jobs back to the queue (up to EVOP_SHUTDOWN_MS) and exit 0.
 * Environment: .env.example (DATABASE_URL, REDIS_URL, EVOP_API_URL, EVOP_SERVICE_TOKEN, EVOP_ARTIFACT_DIR,
 * EVOP_QUEUE_PREFIX, EVOP_COORDINATOR_CONCURRENCY, EVOP_COORDINATOR_LOCK_MS).
 */
import { join } from 'node:path';
import { createLogger, requireServiceToken, serviceConfig, stopOnSignals } from '@evop/config';
import { ArtifactClient, ArtifactStore } from '@evop/data';
import { jobOutbox, openDatabase } from '@evop/db';
import { CalibrationThreads } from '@evop/pipeline/control';
import { channels, PruneOutbox, publishJobEvent, QUEUES, redisConnection } from '@evop/queue';
import { Queue, QueueEvents, Worker } from 'bullmq';
import type { TaskQueues } from './job-runner.ts';
import { type PruneJobData, PruneProcessor } from './prune-processor.ts';

const config = serviceConfig();
const log = createLogger('coordinator', config.logLevel);
const db = openDatabase(config.databaseUrl);
const connection = redisConnection(config.redisUrl);
const subscriber = redisConnection(config.redisUrl);
const opts = { connection, prefix: config.queuePrefix };
const eventConnections = [QUEUES.fitness, QUEUES.embed, QUEUES.export].map(() =>
  redisConnection(config.redisUrl),
);
const queues = Object.fromEntries(
  ([QUEUES.fitness, QUEUES.embed, QUEUES.export] as const).map((name, i) => [
    name,
    {
      queue: new Queue(name, opts),
      events: new QueueEvents(name, { connection: eventConnections[i]!, prefix: config.queuePrefix }),
    },
  ]),
) as TaskQueues;
// Every task a job waits on listens for its queue closing: hundreds at once are expected.
for (const { queue } of Object.values(queues)) queue.setMaxListeners(0);
await Promise.all(Object.values(queues).map((q) => q.events.waitUntilReady()));

const threads = new CalibrationThreads();
const processor = new PruneProcessor({
  db,
  artifacts: new ArtifactClient({
    store: new ArtifactStore(config.artifactDir),
    apiUrl: config.apiUrl,
    token: requireServiceToken(config),
  }),
  queues,
  publish: (jobId, event) => publishJobEvent(connection, config.queuePrefix, jobId, event),
  log,
  threads,
  workDir: join(config.artifactDir, '..', 'coordinator'),
  masksPerTask: config.masksPerTask,
});
await subscriber.subscribe(channels.cancel(config.queuePrefix));
subscriber.on('message', (_channel, jobId: string) => processor.cancel(jobId));

const worker = new Worker<PruneJobData>(QUEUES.prune, processor.process, {
  ...opts,
  concurrency: config.coordinatorConcurrency,
  // A coordinator that dies loses its jobs' locks this long after; another then takes them over.
  lockDuration: config.coordinatorLockMs,
  stalledInterval: config.coordinatorLockMs,
  maxStalledCount: 100,
});
worker.on('error', (err) => log.error({ err }, 'prune worker error'));

// Submissions whose enqueue did not happen (Redis away, the API gone between row and enqueue) are enqueued here.
const pruneQueue = new Queue(QUEUES.prune, opts);
const outbox = new PruneOutbox(pruneQueue, jobOutbox(db));
const sweeper = setInterval(() => {
  outbox
    .sweep()
    .then((n) => n > 0 && log.info({ jobs: n }, 'enqueued submissions left pending'))
    .catch((err: Error) => log.warn({ reason: err.message }, 'outbox sweep failed; next one in 2 s'));
}, 2000);
await worker.waitUntilReady();
log.info('coordinator ready');
process.stdout.write(`evop coordinator ready (pid ${process.pid})\n`);

stopOnSignals(log, [
  {
    name: 'hand running jobs back',
    run: async () => {
      clearInterval(sweeper);
      processor.shutdown();
      await worker.close();
    },
    timeoutMs: config.shutdownMs,
  },
  { name: 'close the prune queue', run: () => pruneQueue.close() },
  { name: 'stop the calibration threads', run: () => threads.close() },
  ...Object.entries(queues).map(([name, { queue, events }]) => ({
    name: `close ${name} queue`,
    run: () => Promise.all([queue.close(), events.close()]),
  })),
  { name: 'disconnect PostgreSQL', run: () => db.$disconnect() },
  {
    name: 'close Redis connections',
    run: () => Promise.all([connection, subscriber, ...eventConnections].map((c) => c.quit())),
  },
]);
