import { UnrecoverableError } from 'bullmq';

/**
 * The tasks a worker runs, by job, so that a job's cancel event (the API publishes its id on `channels.cancel`)
 * stops them: each task runs with a signal its model work checks between batches, and a task stopped that way
 * fails at once, without retries, leaving its worker free for other work.
 */
export class JobCancels {
  private readonly running = new Map<string, Set<AbortController>>();

  /** Aborts the job's tasks running here. */
  cancel(jobId: string): void {
    for (const controller of this.running.get(jobId) ?? [])
      controller.abort(new Error(`job ${jobId} cancelled`));
  }

  /** Runs one of the job's tasks with the signal its cancel event aborts. */
  async run<R>(jobId: string, task: (signal: AbortSignal) => Promise<R>): Promise<R> {
    const controller = new AbortController();
    const tasks = this.running.get(jobId) ?? new Set();
    tasks.add(controller);
    this.running.set(jobId, tasks);
    try {
      return await task(controller.signal);
    } catch (err) {
      if (controller.signal.aborted) throw new UnrecoverableError(`job ${jobId} was cancelled`);
      throw err;
    } finally {
      tasks.delete(controller);
      if (tasks.size === 0) this.running.delete(jobId);
    }
  }
}
