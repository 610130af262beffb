import { dirname } from 'node:path';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { authentication } from './auth.ts';
import { endConnectionsOnClose } from './connections-on-close.ts';
import { dashboard } from './dashboard.ts';
import type { ApiDeps } from './deps.ts';
import { problemHandler, tooManyRequests } from './problem.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { datasetRoutes } from './routes/datasets.ts';
import { deletionRoutes } from './routes/deletions.ts';
import { eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { jobRoutes } from './routes/jobs.ts';
import { modelRoutes } from './routes/models.ts';
import { workerRoutes } from './routes/workers.ts';
import { serverPathHider } from './server-paths.ts';

/** The API server: every feature a plugin, every route with a zod schema that is its validation and its docs. */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.log as FastifyBaseLogger }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  problemHandler(app, serverPathHider([dirname(deps.config.artifactDir)]));
  endConnectionsOnClose(app);
  // The docs and the dashboard's files are public; the dashboard's calls carry the user's key.
  app.addHook('onRoute', (route) => {
    if (route.url === '/' || route.url.startsWith('/docs') || route.url.startsWith('/ui/'))
      route.config = { ...(route.config ?? {}), auth: 'public' };
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'evop',
        version: '0.1.0',
        description:
          'Prune decoder layers out of ONNX language models by evolutionary search. Authenticate with ' +
          '`Authorization: Bearer <API key>` (`evop admin create-key --tenant NAME`). Errors are application/problem+json.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  await app.register(multipart, { limits: { fileSize: deps.config.maxUploadBytes, files: 64, fields: 16 } });
  await app.register(rateLimit, {
    max: deps.config.rateLimit,
    timeWindow: '1 minute',
    keyGenerator: (request) => request.headers.authorization ?? request.ip,
    allowList: (request) => request.url.startsWith('/internal/') || request.url === '/healthz',
    errorResponseBuilder: (_request, context) =>
      tooManyRequests(`more than ${context.max} requests in ${context.after}; retry later`, context.ttl),
  });
  // The per-key limit above runs after authentication; requests without a valid key are limited per client IP
  // in authentication itself, before their key is looked up.
  const anonymousLimit = app.createRateLimit({
    max: deps.config.anonymousRateLimit,
    timeWindow: '1 minute',
    keyGenerator: (request) => request.ip,
  });
  authentication(app, deps.db, deps.config.serviceToken, anonymousLimit);
  for (const routes of [
    healthRoutes,
    modelRoutes,
    datasetRoutes,
    jobRoutes,
    eventRoutes,
    artifactRoutes,
    workerRoutes,
    deletionRoutes,
  ])
    await app.register(routes(deps));
  await dashboard(app);
  return app;
}
