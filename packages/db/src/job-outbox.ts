import type { Database } from './database.ts';

/**
 * The job rows as the submission outbox (packages/queue `PruneOutbox`): a queued job without `enqueuedAt` has a
 * committed row whose enqueue has not happened yet.
 */
export function jobOutbox(db: Database) {
  return {
    async pending(): Promise<string[]> {
      const rows = await db.job.findMany({
        where: { status: 'queued', enqueuedAt: null },
        orderBy: { createdAt: 'asc' },
        select: { id: true },
        take: 1000,
      });
      return rows.map((r) => r.id);
    },
    async markEnqueued(jobId: string): Promise<void> {
      await db.job.update({ where: { id: jobId }, data: { enqueuedAt: new Date() } });
    },
  };
}
