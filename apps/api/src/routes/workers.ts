import { listWorkers } from '@evop/queue';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.ts';

/** GET /v1/workers: the workers that sent a heartbeat lately, with their device, provider and throughput. */
export const workerRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/v1/workers', { schema: { summary: 'List live workers', tags: ['workers'] } }, async () => ({
      workers: await listWorkers(deps.redis, deps.config.queuePrefix),
    }));
  };
