import { isDeepStrictEqual } from 'node:util';
import { runtimeConfig } from '@evop/config';
import { STRATEGIES } from '@evop/core';
import { jobOutbox } from '@evop/db';
import {
  checkServiceMaxima,
  checkTaskMemory,
  PipelineError,
  planSearch,
  searchSpecSchema,
} from '@evop/pipeline/control';
import { channels, isFinished, JOB_STATUSES, PruneOutbox, publishJobEvent } from '@evop/queue';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { createWithinQuota } from '../job-quota.ts';
import { currentLayout } from '../model-layout.ts';
import { ApiError, invalid, notFound } from '../problem.ts';
import { idParams, jobView } from '../views.ts';

const createJob = z
  .object({
    modelId: z.string().uuid(),
    datasetId: z.string().uuid(),
    /** Datasets never calibrated on: the result gives held-out perplexity on each (out of domain). */
    evalDatasetIds: z.array(z.string().uuid()).max(16).default([]),
    spec: searchSpecSchema,
  })
  .strict();

/** A spec the pipeline refuses: 422 naming its field (`spec.seqLen: …`). */
function specError(err: unknown): unknown {
  return err instanceof PipelineError ? invalid(`spec.${err.field}`, err.reason) : err;
}

/** Jobs: submit (202 + Location, Idempotency-Key), list, inspect, generations, cancel. */
export const jobRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { db } = deps;
    const outbox = new PruneOutbox(deps.pruneQueue, jobOutbox(db));
    /** The job's enqueue, done now when Redis takes it in time, else left to the coordinators' sweeper. */
    const enqueue = async (jobId: string) => {
      if (!(await outbox.submit(jobId)))
        deps.log.warn(
          { job: jobId },
          'the queue did not take the job in time; a coordinator will enqueue it',
        );
    };
    /** What a worker's tasks run with: the API estimates their memory with the settings the workers share. */
    const runtime = runtimeConfig();
    const ownJob = async (id: string, tenantId: string) => {
      const job = await db.job.findFirst({ where: { id, tenantId }, include: { result: true } });
      if (!job) throw notFound('job', id);
      return job;
    };

    app.post(
      '/v1/jobs',
      {
        schema: {
          summary: 'Submit a pruning job',
          description:
            'Answers 202 with the job and its Location once the job is stored; it is put on the queue then, or by a ' +
            'coordinator when the queue is unreachable. The same `Idempotency-Key` with the same body returns the ' +
            "same job (and completes its submission); with another body, 409. A spec past the service's limits " +
            "(EVOP_MAX_*, the model's context, a task's memory: EVOP_WORKER_MEMORY_BYTES) is 422 naming the field; " +
            'a tenant with EVOP_TENANT_MAX_ACTIVE_JOBS jobs queued or running gets 429.',
          tags: ['jobs'],
          body: createJob,
          headers: z.object({ 'idempotency-key': z.string().min(1).max(200).optional() }),
        },
      },
      async (request, reply) => {
        const { modelId, datasetId, evalDatasetIds, spec } = request.body;
        const body = { modelId, datasetId, evalDatasetIds, spec };
        const key = request.headers['idempotency-key'];
        const tenantId = request.tenantId;
        if (key) {
          const existing = await db.job.findUnique({
            where: { tenantId_idempotencyKey: { tenantId, idempotencyKey: key } },
            include: { result: true },
          });
          if (existing) {
            const job = sameRequest(existing, body);
            // A retry completes a submission whose enqueue did not happen.
            if (job.status === 'queued' && job.enqueuedAt === null) await enqueue(job.id);
            return accepted(reply, job);
          }
        }
        try {
          // The service's maxima first: they need no model.
          checkServiceMaxima(spec, deps.config);
        } catch (err) {
          throw specError(err);
        }
        const model = await db.model.findFirst({ where: { id: modelId, tenantId } });
        if (!model) throw invalid('modelId', `no model '${modelId}'`);
        const dataset = await db.dataset.findFirst({ where: { id: datasetId, tenantId } });
        if (!dataset) throw invalid('datasetId', `no dataset '${datasetId}'`);
        const found = await db.dataset.findMany({
          where: { id: { in: evalDatasetIds }, tenantId },
          select: { id: true },
        });
        for (const [i, id] of evalDatasetIds.entries()) {
          if (id === datasetId)
            throw invalid(
              `evalDatasetIds.${i}`,
              'is the datasetId the job calibrates on; name datasets it does not',
            );
          if (!found.some((d) => d.id === id)) throw invalid(`evalDatasetIds.${i}`, `no dataset '${id}'`);
        }
        try {
          const layout = await currentLayout(deps, model);
          planSearch(layout, spec);
          checkTaskMemory(layout, spec, deps.config, runtime);
        } catch (err) {
          throw specError(err);
        }
        const { job, created } = await createWithinQuota(
          db,
          { tenantId, ...body, idempotencyKey: key ?? null },
          deps.config.tenantMaxActiveJobs,
        );
        // Submitted with the same key meanwhile: that submission's job, as for a retry.
        if (!created) return accepted(reply, sameRequest(job, body));
        await enqueue(job.id);
        return accepted(reply, job);
      },
    );

    const accepted = (reply: FastifyReply, job: Awaited<ReturnType<typeof ownJob>>) =>
      reply.code(202).header('location', `/v1/jobs/${job.id}`).send(jobView(job));

    /** The job an Idempotency-Key was first used for, if this request is the same; 409 otherwise. */
    function sameRequest(
      job: Awaited<ReturnType<typeof ownJob>>,
      body: { modelId: string; datasetId: string; evalDatasetIds: string[]; spec: unknown },
    ) {
      // Compared as values: PostgreSQL's jsonb does not keep the order of keys.
      const same =
        job.modelId === body.modelId &&
        job.datasetId === body.datasetId &&
        isDeepStrictEqual(job.evalDatasetIds, body.evalDatasetIds) &&
        isDeepStrictEqual(job.spec, body.spec);
      if (!same)
        throw new ApiError(409, 'Conflict', 'Idempotency-Key: already used for a job with another body');
      return job;
    }

    app.get(
      '/v1/jobs',
      {
        schema: {
          summary: 'List jobs, newest first',
          tags: ['jobs'],
          querystring: z.object({
            status: z.enum(JOB_STATUSES).optional(),
            limit: z.coerce.number().int().min(1).max(500).default(50),
          }),
        },
      },
      async (request) => {
        const rows = await db.job.findMany({
          where: {
            tenantId: request.tenantId,
            ...(request.query.status ? { status: request.query.status } : {}),
          },
          orderBy: { createdAt: 'desc' },
          take: request.query.limit,
          include: { result: true },
        });
        return { jobs: rows.map(jobView) };
      },
    );

    app.get(
      '/v1/jobs/:id',
      {
        schema: {
          summary: 'A job: status, stage, progress, best so far, result',
          tags: ['jobs'],
          params: idParams,
        },
      },
      async (request) => jobView(await ownJob(request.params.id, request.tenantId)),
    );

    app.get(
      '/v1/jobs/:id/generations',
      {
        schema: {
          summary: "The job's search history, one record per generation and strategy",
          tags: ['jobs'],
          params: idParams,
          querystring: z.object({ strategy: z.enum(STRATEGIES).optional() }),
        },
      },
      async (request) => {
        await ownJob(request.params.id, request.tenantId);
        const rows = await db.generation.findMany({
          where: {
            jobId: request.params.id,
            ...(request.query.strategy ? { strategy: request.query.strategy } : {}),
          },
          orderBy: [{ createdAt: 'asc' }, { index: 'asc' }],
          select: { strategy: true, index: true, record: true },
        });
        return {
          generations: rows.map((r) => ({ strategy: r.strategy, index: r.index, ...JSON.parse(r.record) })),
        };
      },
    );

    app.post(
      '/v1/jobs/:id/cancel',
      {
        schema: {
          summary: 'Cancel a job',
          description: 'A queued job is cancelled at once; a running one stops within one generation (202).',
          tags: ['jobs'],
          params: idParams,
        },
      },
      async (request, reply) => {
        const job = await ownJob(request.params.id, request.tenantId);
        if (isFinished(job.status))
          throw new ApiError(
            409,
            'Conflict',
            `the job has already ${job.status === 'cancelled' ? 'been cancelled' : job.status}`,
          );
        await db.job.update({ where: { id: job.id }, data: { cancelRequested: true } });
        if (job.status === 'queued') {
          // Removed only while waiting: a coordinator that has taken it sees the flag instead.
          const removed = await deps.pruneQueue.remove(job.id);
          if (removed === 1) {
            const cancelled = await db.job.update({
              where: { id: job.id },
              data: { status: 'cancelled', finishedAt: new Date() },
              include: { result: true },
            });
            await publishJobEvent(deps.redis, deps.config.queuePrefix, job.id, {
              type: 'status',
              status: 'cancelled',
              stage: null,
              progress: cancelled.progress,
            });
            return reply.code(202).send(jobView(cancelled));
          }
        }
        await deps.redis.publish(channels.cancel(deps.config.queuePrefix), job.id);
        return reply.code(202).send(jobView(await ownJob(job.id, request.tenantId)));
      },
    );
  };
