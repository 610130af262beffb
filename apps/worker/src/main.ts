/**
 * A worker process: consumes `fitness` tasks with onnxruntime in worker threads (the evaluator pool), so the
 * event loop stays free to renew BullMQ's locks. SIGTERM / SIGINT finish the task in hand, then exit.
 * Environment: REDIS_URL, EVOP_ARTIFACT_DIR (default ~/.cache/evop/artifacts), EVOP_QUEUE_PREFIX, EVOP_* runtime.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore } from '@evop/data';
import { fitnessWorker, redisConnection } from '@evop/queue';
import { InferencePool } from '@evop/runtime';
import { fitnessProcessor } from './fitness-processor.ts';

const artifacts = process.env.EVOP_ARTIFACT_DIR ?? join(homedir(), '.cache', 'evop', 'artifacts');
const store = new ArtifactStore(artifacts);
const pool = new InferencePool();
const connection = redisConnection();
const worker = fitnessWorker(fitnessProcessor(store, pool, join(artifacts, '..')), {
  connection,
  ...(process.env.EVOP_QUEUE_PREFIX ? { prefix: process.env.EVOP_QUEUE_PREFIX } : {}),
});
await worker.waitUntilReady();
process.stdout.write(`evop worker ready (pid ${process.pid}, ${pool.threads} threads)\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await worker.close(); // waits for the task in hand
  await pool.close();
  await connection.quit();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
