/**
 * A worker that answers fitness tasks at once (no model): what is left of a task's cost is the control plane's.
 * Environment: REDIS_URL, EVOP_QUEUE_PREFIX, CONCURRENCY.
 */
import { fitnessTask, QUEUES, redisConnection, taskWorker } from '@evop/queue';

const connection = redisConnection();
const worker = taskWorker(
  QUEUES.fitness,
  fitnessTask,
  async (task) =>
    task.masks.map((m) => ({ nllSum: [...m].filter((b) => b === '1').length / m.length, count: 1 })),
  { connection, prefix: process.env.EVOP_QUEUE_PREFIX!, concurrency: Number(process.env.CONCURRENCY ?? 64) },
);
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await worker.close();
  await connection.quit();
  process.exit(0);
});
