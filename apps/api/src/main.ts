/**
 * The API process (fastify on PORT, default 3000). Environment: .env.example (DATABASE_URL, REDIS_URL,
 * EVOP_ARTIFACT_DIR, EVOP_SERVICE_TOKEN, EVOP_QUEUE_PREFIX, EVOP_MAX_UPLOAD_BYTES, EVOP_RATE_LIMIT, PORT, HOST).
 * SIGTERM / SIGINT stop accepting requests, finish those in flight (up to EVOP_SHUTDOWN_MS), and exit 0.
 */
import { createLogger, serviceConfig, stopOnSignals } from '@evop/config';
import { ArtifactStore } from '@evop/data';
import { openDatabase } from '@evop/db';
import { QUEUES, redisConnection } from '@evop/queue';
import { Queue } from 'bullmq';
import { buildApp } from './app.ts';
import { ArtifactCollector } from './artifact-collector.ts';
import { JobEventHub } from './job-event-hub.ts';
import { UploadChecker } from './upload-checker.ts';

const config = serviceConfig();
const log = createLogger('api', config.logLevel);
const db = openDatabase(config.databaseUrl);
const redis = redisConnection(config.redisUrl);
const subscriber = redisConnection(config.redisUrl);
const pruneQueue = new Queue(QUEUES.prune, { connection: redis, prefix: config.queuePrefix });
const store = new ArtifactStore(config.artifactDir);
const checker = new UploadChecker();
const collector = new ArtifactCollector(db, store, log, {
  graceMs: config.gcGraceMs,
  intervalMs: config.gcIntervalMs,
});
const app = await buildApp({
  config,
  db,
  redis,
  events: await JobEventHub.open(subscriber, config.queuePrefix),
  store,
  checker,
  collector,
  pruneQueue,
  log,
});
collector.start();
const address = await app.listen({ port: config.port, host: config.host });
process.stdout.write(`evop api listening on ${address}\n`);

stopOnSignals(log, [
  { name: 'finish requests in flight', run: () => app.close(), timeoutMs: config.shutdownMs },
  { name: 'stop collecting artifacts', run: () => collector.stop() },
  { name: 'stop the upload checks', run: () => checker.close() },
  { name: 'close the prune queue', run: () => pruneQueue.close() },
  { name: 'disconnect PostgreSQL', run: () => db.$disconnect() },
  { name: 'close Redis connections', run: () => Promise.all([redis.quit(), subscriber.quit()]) },
]);
