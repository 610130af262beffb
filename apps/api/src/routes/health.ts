import { listWorkers } from '@evop/queue';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Gauge, Histogram, Registry } from 'prom-client';
import type { ApiDeps } from '../deps.ts';

/**
 * /healthz (the process answers), /readyz (PostgreSQL and Redis answer: 503 otherwise) and /metrics
 * (Prometheus: request durations, jobs by status, live workers, queue depths).
 */
export const healthRoutes = (deps: ApiDeps): FastifyPluginAsyncZod => {
  const plugin: FastifyPluginAsyncZod = async (app) => {
    const registry = new Registry();
    const requests = new Histogram({
      name: 'evop_http_request_duration_seconds',
      help: 'HTTP request durations',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    new Gauge({
      name: 'evop_jobs',
      help: 'Jobs by status',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const counts = await deps.db.job.groupBy({ by: ['status'], _count: { _all: true } });
        this.reset();
        for (const c of counts) this.set({ status: c.status }, c._count._all);
      },
    });
    new Gauge({
      name: 'evop_workers',
      help: 'Workers with a recent heartbeat',
      registers: [registry],
      async collect() {
        this.set((await listWorkers(deps.redis, deps.config.queuePrefix)).length);
      },
    });
    new Gauge({
      name: 'evop_prune_jobs_waiting',
      help: 'Prune jobs waiting for a coordinator',
      registers: [registry],
      async collect() {
        this.set(await deps.pruneQueue.getWaitingCount());
      },
    });
    new Gauge({
      name: 'evop_event_streams',
      help: 'Open job event streams (SSE) of this API process',
      registers: [registry],
      collect() {
        this.set(deps.events.listeners);
      },
    });
    app.addHook('onResponse', async (request, reply) => {
      requests.observe(
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unknown',
          status: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      );
    });

    app.get(
      '/healthz',
      { config: { auth: 'public' }, schema: { summary: 'Liveness', tags: ['health'] } },
      async () => ({
        status: 'ok',
      }),
    );
    app.get(
      '/readyz',
      {
        config: { auth: 'public' },
        schema: { summary: 'Readiness: PostgreSQL and Redis answer', tags: ['health'] },
      },
      async (_request, reply) => {
        const check = async (fn: () => Promise<unknown>) => {
          try {
            await Promise.race([
              fn(),
              new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000)),
            ]);
            return 'ok';
          } catch (err) {
            return `down: ${(err as Error).message}`;
          }
        };
        const [database, redis] = await Promise.all([
          check(() => deps.db.$queryRaw`SELECT 1`),
          check(() => deps.redis.ping()),
        ]);
        const ready = database === 'ok' && redis === 'ok';
        return reply
          .code(ready ? 200 : 503)
          .send({ status: ready ? 'ready' : 'unavailable', database, redis });
      },
    );
    app.get(
      '/metrics',
      // Every tenant's job counts: for the operator's Prometheus, which presents the service token.
      {
        config: { auth: 'service' },
        schema: { summary: 'Prometheus metrics', tags: ['health'], hide: true },
      },
      async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    );
  };
  // Not encapsulated (fastify-plugin's convention), so that the timing hook sees every route of the server.
  Object.assign(plugin, { [Symbol.for('skip-override')]: true });
  return plugin;
};
