import { createHash } from 'node:crypto';
import type { JobsOptions, Queue, QueueEvents } from 'bullmq';
import type { z } from 'zod';
import { awaitTasks } from './await-tasks.ts';

/**
 * A task's id, derived from its content: the same task added twice (a coordinator resumed after a crash) is one
 * task, and its result is read back rather than computed again.
 */
export function taskId(jobId: string, data: unknown): string {
  return `${jobId}-${createHash('sha256').update(JSON.stringify(data)).digest('hex').slice(0, 32)}`;
}

/**
 * How every task is added: its content-derived id; on failure retried `attempts` times in all, 1 s, 2 s, 4 s…
 * apart; its record removed when it has failed for good, so that the same task added again (after an outage, by
 * a coordinator taking a job over) runs again instead of answering with the old failure.
 */
export function taskOptions(jobId: string, data: unknown, attempts = 3): JobsOptions {
  return {
    jobId: taskId(jobId, data),
    attempts,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 3600 },
    removeOnFail: true,
  };
}

export interface RunTaskOptions<R> {
  /** Checks the result (a task's return value travels as JSON). */
  result: z.ZodType<R>;
  /** Attempts before the task fails (default 3), e.g. when a worker dies mid-task. */
  attempts?: number;
  /** Longest wait, in ms (default 2 hours). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with what the task reports as it runs (`job.updateProgress` on the worker). */
  onProgress?: (progress: unknown) => void;
}

/** Adds one task of a job to a queue and waits for its result. */
export async function runTask<T extends { jobId: string }, R>(
  queue: Queue,
  events: QueueEvents,
  data: T,
  options: RunTaskOptions<R>,
): Promise<R> {
  const id = taskId(data.jobId, data);
  const progress = ({ jobId, data }: { jobId: string; data: unknown }) => {
    if (jobId === id) options.onProgress?.(data);
  };
  if (options.onProgress) events.on('progress', progress);
  try {
    const job = await queue.add(queue.name, data, taskOptions(data.jobId, data, options.attempts));
    const [value] = await awaitTasks([job], events, options.timeoutMs ?? 2 * 3600_000, options.signal);
    return options.result.parse(value);
  } finally {
    events.off('progress', progress);
  }
}
