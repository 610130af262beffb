import { randomUUID } from 'node:crypto';
import { UserError } from '@evop/config';
import { isUnavailableError } from '@evop/db';
import { isFinished } from '@evop/queue';
import { DelayedError, type Job } from 'bullmq';
import { CancelRequested, type JobRunnerDeps, runJob, SupersededRun } from './job-runner.ts';

/** How long a job waits for PostgreSQL or Redis to come back before it fails. */
const OUTAGE_LIMIT_MS = 10 * 60_000;

export interface PruneJobData {
  jobId: string;
}

/**
 * The coordinator's processor of `prune` jobs. Job outcomes live in PostgreSQL: a failed or cancelled job
 * completes its BullMQ job normally. A coordinator shutting down puts its jobs back in the queue, where another
 * coordinator (or this one, restarted) resumes them from their last checkpoint.
 */
export class PruneProcessor {
  private readonly running = new Map<string, AbortController>();
  private shuttingDown = false;

  constructor(private readonly deps: JobRunnerDeps) {}

  /** Stops the job's search at once if it runs here (the cancel flag in PostgreSQL stops it anywhere). */
  cancel(jobId: string): void {
    this.running.get(jobId)?.abort(new CancelRequested());
  }

  /** Stops every job here; each goes back to the queue. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const controller of this.running.values()) controller.abort(new Error('coordinator shutting down'));
  }

  readonly process = async (job: Job<PruneJobData>, token?: string): Promise<void> => {
    const { db, log } = this.deps;
    const { jobId } = job.data;
    const row = await db.job.findUnique({ where: { id: jobId } });
    if (!row || isFinished(row.status)) return;
    // A run that starts supersedes every other run of the job still going (BullMQ starts a job again when it
    // takes it for stalled): only the newest one's token is on the row, and only it can write.
    const runToken = randomUUID();
    this.running.get(jobId)?.abort(new SupersededRun());
    await db.job.update({ where: { id: jobId }, data: { runToken } });
    const controller = new AbortController();
    this.running.set(jobId, controller);
    const jobLog = log.child({ job: jobId });
    try {
      if (row.cancelRequested) throw new CancelRequested();
      jobLog.info({ attempt: job.attemptsMade, resumed: row.status === 'running' }, 'job started');
      await this.runThroughOutages(jobId, runToken, controller.signal);
      jobLog.info('job succeeded');
    } catch (err) {
      if (err instanceof SupersededRun || controller.signal.reason instanceof SupersededRun) {
        jobLog.warn('a newer run of this job took it over; this run stops without writing');
        return;
      }
      if (this.shuttingDown && controller.signal.aborted) {
        jobLog.info('job handed back to the queue');
        await job.moveToDelayed(Date.now() + 500, token);
        throw new DelayedError();
      }
      const current = await db.job.findUnique({ where: { id: jobId } });
      if (err instanceof CancelRequested || current?.cancelRequested) {
        await this.finish(jobId, runToken, 'cancelled', null);
        jobLog.info('job cancelled');
        return;
      }
      const message = (err as Error).message;
      // The job's input being wrong is the user's to fix: a warning, not a crash of evop.
      if (!(err instanceof UserError)) jobLog.error({ err }, 'job failed');
      else jobLog.warn({ reason: message }, 'job failed on its input');
      await this.finish(jobId, runToken, 'failed', message);
    } finally {
      if (this.running.get(jobId) === controller) this.running.delete(jobId);
    }
  };

  /**
   * Runs the job; when PostgreSQL or Redis goes away it waits for them and runs it again, which continues from
   * the last checkpoint (an outage costs at most the generation in flight).
   */
  private async runThroughOutages(jobId: string, runToken: string, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + OUTAGE_LIMIT_MS;
    for (;;) {
      try {
        return await runJob(jobId, runToken, this.deps, signal);
      } catch (err) {
        if (signal.aborted || !isUnavailableError(err) || Date.now() > deadline) throw err;
        this.deps.log.warn(
          { job: jobId, reason: (err as Error).message },
          'database or queue unreachable; retrying',
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Ends the job as failed or cancelled, unless a newer run holds it (then that run decides). */
  private async finish(
    jobId: string,
    runToken: string,
    status: 'failed' | 'cancelled',
    error: string | null,
  ): Promise<void> {
    const { count } = await this.deps.db.job.updateMany({
      where: { id: jobId, runToken },
      data: { status, error, stage: null, finishedAt: new Date() },
    });
    if (count === 0) return;
    const job = await this.deps.db.job.findUniqueOrThrow({ where: { id: jobId } });
    await this.deps.publish(jobId, { type: 'status', status, stage: null, progress: job.progress, error });
  }
}
