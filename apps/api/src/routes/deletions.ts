import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.ts';
import { ApiError, notFound } from '../problem.ts';
import { idParams } from '../views.ts';

const conflict = (detail: string) => new ApiError(409, 'Conflict', detail);

// PostgreSQL refused the delete for a row that references it (a job submitted meanwhile).
const isStillReferenced = (err: unknown) => (err as { code?: string }).code === 'P2003';

/**
 * DELETE for models, datasets and jobs (204). A model or dataset a job names is refused (409, naming how many
 * and what to delete first), as is a job not yet finished (cancel it first). What a deleted row held in the
 * artifact store is removed by the next garbage collection, which each deletion starts.
 */
export const deletionRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { db } = deps;
    const inUse = async (what: 'model' | 'dataset', id: string) => {
      const jobs = await db.job.groupBy({
        by: ['status'],
        where:
          what === 'model' ? { modelId: id } : { OR: [{ datasetId: id }, { evalDatasetIds: { has: id } }] },
        _count: true,
      });
      const total = jobs.reduce((n, j) => n + j._count, 0);
      if (total === 0) return;
      const unfinished = jobs
        .filter((j) => j.status === 'queued' || j.status === 'running')
        .reduce((n, j) => n + j._count, 0);
      throw conflict(
        `${what} '${id}' is used by ${total} job${total === 1 ? '' : 's'} (${unfinished} unfinished); ` +
          'delete those jobs first (DELETE /v1/jobs/:id, after cancelling unfinished ones)',
      );
    };
    const removed = (reply: { code: (n: number) => { send: () => unknown } }) => {
      void deps.collector.soon();
      return reply.code(204).send();
    };

    for (const what of ['model', 'dataset'] as const) {
      app.delete(
        `/v1/${what}s/:id`,
        {
          schema: {
            summary: `Delete a ${what} (refused while a job uses it)`,
            tags: [`${what}s`],
            params: idParams,
          },
        },
        async (request, reply) => {
          const { id } = request.params;
          const where = { id, tenantId: request.tenantId };
          const table = what === 'model' ? db.model : db.dataset;
          if (!(await (table as typeof db.model).findFirst({ where, select: { id: true } })))
            throw notFound(what, id);
          await inUse(what, id);
          try {
            await (table as typeof db.model).deleteMany({ where });
          } catch (err) {
            if (isStillReferenced(err)) await inUse(what, id);
            throw err;
          }
          return removed(reply);
        },
      );
    }

    app.delete(
      '/v1/jobs/:id',
      {
        schema: {
          summary: 'Delete a finished job with its generations and result (refused while it runs)',
          tags: ['jobs'],
          params: idParams,
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const job = await db.job.findFirst({ where: { id, tenantId: request.tenantId } });
        if (!job) throw notFound('job', id);
        // Only a finished job: a coordinator may still write a running one's checkpoints.
        const { count } = await db.job.deleteMany({
          where: { id, status: { in: ['succeeded', 'failed', 'cancelled'] } },
        });
        if (count === 0)
          throw conflict(`job '${id}' is ${job.status}; cancel it first (POST /v1/jobs/${id}/cancel)`);
        return removed(reply);
      },
    );
  };
