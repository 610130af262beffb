import { isFinished, type JobEvent } from '@evop/queue';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.ts';
import { notFound, serviceUnavailable } from '../problem.ts';
import { idParams } from '../views.ts';

const KEEPALIVE_MS = 15_000;

/**
 * GET /v1/jobs/:id/events, server-sent events: the job's status, then every generation so far (from PostgreSQL)
 * and each new one as it is checkpointed, then status changes; the stream ends after a final status. Each
 * generation event has the id `<strategy>:<index>`, so a client that reconnects can tell what it has seen.
 */
export const eventRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    // Server close ends every stream, so that it does not wait for clients that never hang up (their connections
    // end with them: `endConnectionsOnClose`); one whose job was still being looked up is refused.
    const open = new Set<() => void>();
    let closing = false;
    app.addHook('preClose', async () => {
      closing = true;
      for (const end of [...open]) end();
    });
    app.get(
      '/v1/jobs/:id/events',
      {
        schema: {
          summary: 'Stream job progress (text/event-stream)',
          description:
            'Events: `status` {status, stage, progress, error} and `generation` {strategy, record}.',
          tags: ['jobs'],
          params: idParams,
          produces: ['text/event-stream'],
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const job = await deps.db.job.findFirst({ where: { id, tenantId: request.tenantId } });
        if (!job) throw notFound('job', id);
        if (closing) throw serviceUnavailable('the server is shutting down; retry shortly');

        // Listen first, then read what is stored, so that nothing published in between is missed.
        const live: JobEvent[] = [];
        let send: ((event: JobEvent) => void) | undefined;
        const stopListening = deps.events.listen(id, (event) => (send ? send(event) : live.push(event)));
        reply.hijack();
        const raw = reply.raw;
        const seen = new Set<string>();
        let ended = false;
        let keepalive: NodeJS.Timeout | undefined;
        // Every way a stream ends comes here: the client gone (at any moment), the job's final status, server
        // close. Its timer and listener go with it.
        const end = () => {
          if (ended) return;
          ended = true;
          clearInterval(keepalive);
          stopListening();
          open.delete(end);
          raw.end();
        };
        // 'close' is emitted once: a client that hung up while the request was authenticated or the job looked
        // up is gone already, and would otherwise keep its timer and listener until the job ends.
        if (raw.destroyed) return end();
        raw.on('close', end);
        open.add(end);
        raw.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        const write = (event: JobEvent) => {
          if (ended) return;
          if (event.type === 'generation') {
            const key = `${event.strategy}:${event.record.generation}`;
            if (seen.has(key)) return;
            seen.add(key);
            raw.write(`event: generation\nid: ${key}\ndata: ${JSON.stringify(event)}\n\n`);
          } else {
            raw.write(`event: status\ndata: ${JSON.stringify(event)}\n\n`);
            if (isFinished(event.status)) end();
          }
        };
        keepalive = setInterval(() => raw.write(': keepalive\n\n'), KEEPALIVE_MS);

        raw.write('retry: 2000\n\n');
        const current = await deps.db.job.findUniqueOrThrow({ where: { id } });
        const generations = await deps.db.generation.findMany({
          where: { jobId: id },
          orderBy: [{ createdAt: 'asc' }, { index: 'asc' }],
          select: { strategy: true, record: true },
        });
        const status = (j: typeof current): JobEvent => ({
          type: 'status',
          status: j.status,
          stage: j.stage,
          progress: j.progress,
          error: j.error,
        });
        if (!isFinished(current.status)) write(status(current));
        for (const g of generations)
          write({ type: 'generation', strategy: g.strategy, record: JSON.parse(g.record) });
        for (const event of live) write(event);
        send = write;
        if (isFinished(current.status)) write(status(current));
      },
    );
  };
