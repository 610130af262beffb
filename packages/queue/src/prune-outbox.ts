import type { Queue } from 'bullmq';
import { QUEUES } from './tasks.ts';

/** Where submitted jobs wait to be enqueued: PostgreSQL's job rows (packages/db `jobOutbox`). */
export interface OutboxStore {
  /** Queued jobs whose enqueue is still pending, oldest first. */
  pending(): Promise<string[]>;
  markEnqueued(jobId: string): Promise<void>;
}

export interface PruneOutboxOptions {
  /** How long one enqueue may wait for Redis before it is left to the sweeper (default 2 s). */
  enqueueTimeoutMs?: number;
}

/**
 * The submission outbox: a job's row commits first (it is the intent to enqueue), then the job goes on the
 * `prune` queue and the row is marked. When Redis is away or the API dies in between, a sweeper running in every
 * coordinator enqueues what is pending, so no job stays `queued` forever. Adding a job twice is harmless: its
 * BullMQ id is the job's id, and a coordinator skips a job that has already finished.
 */
export class PruneOutbox {
  private sweeping: Promise<number> | undefined;

  constructor(
    private readonly queue: Queue,
    private readonly store: OutboxStore,
    private readonly options: PruneOutboxOptions = {},
  ) {}

  /**
   * Enqueues a stored job; false when Redis did not take it in time or refused it, or the row could not be marked
   * (the sweeper makes good on each: the row is committed, so the submission stands).
   */
  async submit(jobId: string): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const added = this.queue.add(QUEUES.prune, { jobId }, { jobId, removeOnComplete: true }).then(
      () => true,
      () => false,
    );
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, this.options.enqueueTimeoutMs ?? 2000, false);
    });
    try {
      if (!(await Promise.race([added, late]))) return false;
    } finally {
      clearTimeout(timer);
    }
    return this.store.markEnqueued(jobId).then(
      () => true,
      () => false,
    );
  }

  /** Enqueues every pending job (one sweep at a time); returns how many it enqueued. */
  sweep(): Promise<number> {
    this.sweeping ??= (async () => {
      let enqueued = 0;
      for (const jobId of await this.store.pending()) if (await this.submit(jobId)) enqueued++;
      return enqueued;
    })().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }
}
