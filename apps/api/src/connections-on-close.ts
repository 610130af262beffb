import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';

/**
 * Server close ends each connection once its response is sent. Node's `server.close()` closes the connections
 * idle at that moment and waits for the rest; one serving a request then stays open after its response for the
 * keep-alive timeout (72 s under fastify), so a shutdown would wait for any client whose request was in flight
 * (a coordinator fetching an artifact, a slow upload) longer than EVOP_SHUTDOWN_MS allows. From close on, a
 * response whose headers are still to be written says `Connection: close` (Node then ends the socket after it),
 * and one already under way ends its socket when it has been sent.
 */
export function endConnectionsOnClose(app: FastifyInstance): void {
  const inFlight = new Set<ServerResponse>();
  app.addHook('onRequest', async (_request, reply) => {
    const raw = reply.raw;
    inFlight.add(raw);
    raw.once('close', () => inFlight.delete(raw));
  });
  app.addHook('preClose', async () => {
    for (const raw of inFlight) {
      if (!raw.headersSent) raw.shouldKeepAlive = false;
      const socket = raw.socket;
      raw.once('finish', () => socket?.destroySoon());
    }
  });
}
