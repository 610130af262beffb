import { timingSafeEqual } from 'node:crypto';
import { type Database, tenantOfKey } from '@evop/db';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, tooManyRequests } from './problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant of the request's API key (routes under /v1). */
    tenantId: string;
  }
  interface FastifyContextConfig {
    /** Who may call a route: a tenant's API key (default), the service token, or anyone. */
    auth?: 'tenant' | 'service' | 'public';
  }
}

const bearer = (request: FastifyRequest) => /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];

const unauthorized = (detail: string) =>
  new ApiError(401, 'Unauthorized', detail, { 'www-authenticate': 'Bearer realm="evop"' });

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A rate limit of @fastify/rate-limit checked by hand (`app.createRateLimit`). */
export type RequestLimit = ReturnType<FastifyInstance['createRateLimit']>;

/**
 * Bearer authentication: /v1 routes take a tenant's API key (looked up by its sha256), /internal routes the
 * service token that coordinators and workers share. A tenant only ever sees its own rows: routes filter by
 * `request.tenantId`, and another tenant's id is answered 404, as an unknown one.
 *
 * Requests to /v1 without a valid key count against `anonymousLimit` (per client IP); once it is spent, that
 * IP's requests are refused before their key is looked up, so that a flood of wrong keys costs no database
 * reads. Requests with a valid key do not count (the per-key limit applies to them).
 */
export function authentication(
  app: FastifyInstance,
  db: Database,
  serviceToken: string | undefined,
  anonymousLimit: RequestLimit,
): void {
  app.decorateRequest('tenantId', '');
  app.addHook('onRequest', async (request) => {
    const mode = request.routeOptions.config.auth ?? 'tenant';
    if (mode === 'public' || !request.routeOptions.url) return;
    const token = bearer(request);
    if (mode === 'service') {
      if (!token) throw unauthorized('Authorization: Bearer <API key> is required');
      if (!serviceToken || !sameSecret(token, serviceToken)) throw unauthorized('the service token is wrong');
      return;
    }
    const spent = await anonymousLimit(request, { increment: false });
    if (!spent.isAllowed && spent.remaining === 0)
      throw tooManyRequests(
        `more than ${spent.max} requests without a valid API key from this address in a minute; retry later`,
        spent.ttl,
      );
    const tenantId = token ? await tenantOfKey(db, token) : undefined;
    if (!tenantId) {
      await anonymousLimit(request);
      throw unauthorized(
        token ? 'the API key is unknown or revoked' : 'Authorization: Bearer <API key> is required',
      );
    }
    request.tenantId = tenantId;
  });
}
