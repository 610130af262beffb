import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.ts';
import { invalid, notFound } from '../problem.ts';
import { uploadName, withUpload } from '../uploads.ts';
import { datasetView, idParams } from '../views.ts';

/** POST/GET /v1/datasets: a text corpus, checked on upload (documents counted). */
export const datasetRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/v1/datasets',
      {
        schema: {
          summary: 'Upload a text corpus',
          description:
            'multipart/form-data: `name`, `file` and optionally `format`: `text` (documents separated by blank ' +
            'lines) or `jsonl` (one JSON object with a string `text` per line); default from the file name.',
          consumes: ['multipart/form-data'],
          tags: ['datasets'],
        },
      },
      async (request, reply) =>
        withUpload(request, deps, ['file'], async ({ files, fields, stage, keep }) => {
          const name = uploadName(fields.name);
          if (files.length !== 1) throw invalid('file', 'exactly one corpus file is required');
          const file = files[0]!;
          const format = fields.format ?? (file.filename.endsWith('.jsonl') ? 'jsonl' : 'text');
          if (format !== 'text' && format !== 'jsonl')
            throw invalid('format', `'${format}' is not text or jsonl`);
          const { documents } = await deps.checker.corpus({
            path: stage([{ name: format === 'jsonl' ? 'corpus.jsonl' : 'corpus.txt', sha256: file.sha256 }]),
            field: 'file',
            shownAs: file.filename,
          });
          const row = await keep((tx) =>
            tx.dataset.create({
              data: {
                tenantId: request.tenantId,
                name,
                format,
                sha256: file.sha256,
                bytes: BigInt(file.bytes),
                documents,
              },
            }),
          );
          return reply.code(201).header('location', `/v1/datasets/${row.id}`).send(datasetView(row));
        }),
    );

    app.get('/v1/datasets', { schema: { summary: 'List datasets', tags: ['datasets'] } }, async (request) => {
      const rows = await deps.db.dataset.findMany({
        where: { tenantId: request.tenantId },
        orderBy: { createdAt: 'desc' },
      });
      return { datasets: rows.map(datasetView) };
    });

    app.get(
      '/v1/datasets/:id',
      { schema: { summary: 'A dataset', tags: ['datasets'], params: idParams } },
      async (request) => {
        const row = await deps.db.dataset.findFirst({
          where: { id: request.params.id, tenantId: request.tenantId },
        });
        if (!row) throw notFound('dataset', request.params.id);
        return datasetView(row);
      },
    );
  };
