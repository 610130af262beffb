import type { Database } from '@evop/db';
import { ApiError } from './problem.ts';

export interface NewJob {
  tenantId: string;
  modelId: string;
  datasetId: string;
  evalDatasetIds: string[];
  spec: unknown;
  idempotencyKey: string | null;
}

/**
 * Stores a job unless its tenant already has `max` jobs queued or running (EVOP_TENANT_MAX_ACTIVE_JOBS), so that
 * one tenant cannot fill every coordinator and worker: 429 naming the quota. A tenant's submissions are counted
 * one at a time (a transaction-scoped advisory lock on the tenant: concurrent ones cannot all pass the count), and
 * one whose Idempotency-Key is already used gets that job (`created: false`) whatever the quota: a retry of an
 * accepted submission is still answered.
 */
export async function createWithinQuota(db: Database, job: NewJob, max: number) {
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`job-quota:${job.tenantId}`}))`;
    if (job.idempotencyKey !== null) {
      const existing = await tx.job.findUnique({
        where: { tenantId_idempotencyKey: { tenantId: job.tenantId, idempotencyKey: job.idempotencyKey } },
        include: { result: true },
      });
      if (existing) return { job: existing, created: false };
    }
    const active = await tx.job.count({
      where: { tenantId: job.tenantId, status: { in: ['queued', 'running'] } },
    });
    if (active >= max)
      throw new ApiError(
        429,
        'Too Many Requests',
        `EVOP_TENANT_MAX_ACTIVE_JOBS: this tenant has ${active} jobs queued or running, at most ${max} on this ` +
          'service; submit again when one has finished, or cancel one',
      );
    const created = await tx.job.create({
      data: { ...job, spec: job.spec as never },
      include: { result: true },
    });
    return { job: created, created: true };
  });
}
