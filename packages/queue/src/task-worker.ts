import { type ConnectionOptions, type Job, UnrecoverableError, Worker } from 'bullmq';
import type { z } from 'zod';
import { parseTask, type QueueName, TaskPayloadError } from './tasks.ts';

export interface TaskWorkerOptions {
  connection: ConnectionOptions;
  /** Redis key prefix (tests use one of their own). */
  prefix: string;
  /** Tasks in flight on this worker (default 1: one evaluator pool serves them). */
  concurrency?: number;
  /**
   * How long a task's lock lasts without renewal, in ms (default 60 s). Renewal needs a responsive event loop,
   * which the evaluator pool's threads leave free; a worker that dies loses its lock this long after.
   */
  lockDuration?: number;
}

/**
 * A BullMQ worker on one of evop's queues. A payload that does not match its schema fails at once, without
 * retries; an error while processing is retried as the task's attempts allow.
 */
export function taskWorker<T, R>(
  queue: QueueName,
  schema: z.ZodType<T>,
  process: (task: T, job: Job) => Promise<R>,
  options: TaskWorkerOptions,
): Worker<T, R> {
  return new Worker<T, R>(
    queue,
    async (job) => {
      let task: T;
      try {
        task = parseTask(schema, job.data, queue);
      } catch (err) {
        if (err instanceof TaskPayloadError) throw new UnrecoverableError(err.message);
        throw err;
      }
      return process(task, job);
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 60_000,
      // Stalled tasks (their worker died) are looked for as often as a lock can expire.
      stalledInterval: options.lockDuration ?? 60_000,
    },
  );
}
