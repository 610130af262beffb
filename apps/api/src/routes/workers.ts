import { listWorkers } from '@evop/queue';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.ts';

/** GET /v1/workers: the workers that sent a heartbeat lately, with their device, provider and throughput. */
export const workerRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/v1/workers',
      {
        schema: {
          summary: 'List live workers',
          description: "Each worker's loaded models are listed only where they are the caller's own.",
          tags: ['workers'],
        },
      },
      async (request) => {
        const own = new Set(
          (
            await deps.db.model.findMany({
              where: { tenantId: request.tenantId },
              select: { manifestSha256: true },
            })
          ).map((m) => m.manifestSha256),
        );
        const workers = await listWorkers(deps.redis, deps.config.queuePrefix);
        return { workers: workers.map((w) => ({ ...w, models: w.models.filter((m) => own.has(m)) })) };
      },
    );
  };
