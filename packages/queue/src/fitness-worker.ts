import { type ConnectionOptions, UnrecoverableError, Worker } from 'bullmq';
import {
  type FitnessResult,
  type FitnessTask,
  fitnessTask,
  parseTask,
  QUEUES,
  TaskPayloadError,
} from './tasks.ts';

export interface FitnessWorkerOptions {
  connection: ConnectionOptions;
  /** Redis key prefix (tests use one of their own). */
  prefix?: string;
  /** Tasks in flight on this worker (default 1: one evaluator pool serves them). */
  concurrency?: number;
  /** How long a task's lock lasts without renewal, in ms (default 60 s); renewal needs a responsive event loop. */
  lockDuration?: number;
}

/**
 * A BullMQ worker on the `fitness` queue. A payload that does not match its schema fails at once, without
 * retries; an error while evaluating is retried by BullMQ as the task's attempts allow.
 */
export function fitnessWorker(
  evaluate: (task: FitnessTask) => Promise<FitnessResult>,
  options: FitnessWorkerOptions,
): Worker<FitnessTask, FitnessResult> {
  return new Worker<FitnessTask, FitnessResult>(
    QUEUES.fitness,
    async (job) => {
      let task: FitnessTask;
      try {
        task = parseTask(fitnessTask, job.data, QUEUES.fitness);
      } catch (err) {
        if (err instanceof TaskPayloadError) throw new UnrecoverableError(err.message);
        throw err;
      }
      const results = await evaluate(task);
      if (results.length !== task.masks.length)
        throw new Error(`fitness task ${job.id}: ${results.length} results for ${task.masks.length} masks`);
      return results;
    },
    {
      connection: options.connection,
      ...(options.prefix ? { prefix: options.prefix } : {}),
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 60_000,
    },
  );
}
