import type { Job, QueueEvents } from 'bullmq';

/**
 * The return values of tasks, in order; the first task that fails for good (its attempts spent) rejects with the
 * worker's error. When `signal` aborts, the tasks still waiting are removed (so no worker
 * picks them up) and the promise rejects with the signal's reason; running ones finish unobserved.
 */
export async function awaitTasks(
  jobs: readonly Job[],
  events: QueueEvents,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<unknown[]> {
  let stop: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    if (!signal) return;
    stop = () => {
      for (const job of jobs) job.remove().catch(() => {}); // a running task is locked and stays
      reject(signal.reason);
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  try {
    return await Promise.race([
      Promise.all(
        jobs.map((job) =>
          job.waitUntilFinished(events, timeoutMs).catch((err: Error) => {
            // The worker's own error, named with the kind of task that failed for good.
            throw new Error(`${job.queueName} task failed: ${err.message}`);
          }),
        ),
      ),
      aborted,
    ]);
  } finally {
    if (stop) signal?.removeEventListener('abort', stop);
  }
}
