import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FRONT_CHART_SCRIPT } from '@evop/pipeline/control';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const dashboardDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dashboard');
// Chart.js's package exports hide its UMD build; it sits beside the entry point.
const chartJsDir = dirname(createRequire(import.meta.url).resolve('chart.js'));

/**
 * The web dashboard at /ui/: static files (no build step) that call the public REST API with the key the user
 * signs in with; Chart.js served from its package.
 */
export async function dashboard(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, { root: dashboardDir, prefix: '/ui/' });
  await app.register(fastifyStatic, {
    root: chartJsDir,
    prefix: '/ui/vendor/',
    decorateReply: false,
    allowedPath: (path) => path === '/chart.umd.min.js',
  });
  // The front's chart: the script report.html inlines.
  app.get('/ui/vendor/front-chart.js', { schema: { hide: true } }, (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(readFileSync(FRONT_CHART_SCRIPT)),
  );
  app.get('/', { config: { auth: 'public' }, schema: { hide: true } }, (_request, reply) =>
    reply.redirect('/ui/'),
  );
}
