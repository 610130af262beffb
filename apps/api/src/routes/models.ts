import { type ModelManifest, serializeManifest, TOKENIZER_CONFIG, tokenizerFiles } from '@evop/data';
import { type Unit, unitsOf } from '@evop/onnx';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { recordArtifact } from '../artifact-records.ts';
import type { ApiDeps } from '../deps.ts';
import { currentLayout } from '../model-layout.ts';
import { invalid, notFound } from '../problem.ts';
import { uploadName, withUpload } from '../uploads.ts';
import { idParams, modelView } from '../views.ts';

/** POST/GET /v1/models: a model is its .onnx file, its external-data files and its tokenizer. */
export const modelRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/v1/models',
      {
        schema: {
          summary: 'Upload a model',
          description:
            'multipart/form-data: `name`, `model` (the .onnx file), `data` (its external-data files, by the names ' +
            'the .onnx file refers to; repeat for several) and `tokenizer` (tokenizer.json or a llama2.c .bin; give ' +
            '`tokenizer` twice to add the tokenizer_config.json that says whether BOS is added, as transformers does). ' +
            'Layer discovery runs on upload; a graph that is not a decoder-only transformer is refused (422).',
          consumes: ['multipart/form-data'],
          tags: ['models'],
        },
      },
      async (request, reply) =>
        withUpload(request, deps, ['model', 'data', 'tokenizer'], async ({ files, fields, stage, keep }) => {
          const name = uploadName(fields.name);
          const onnx = files.filter((f) => f.field === 'model');
          const tokenizer = files.filter((f) => f.field === 'tokenizer');
          if (onnx.length !== 1) throw invalid('model', 'exactly one .onnx file is required');
          const config = tokenizer.find((f) => f.filename === TOKENIZER_CONFIG);
          const tokenizerFile = tokenizer.find((f) => f !== config);
          if (!tokenizerFile || tokenizer.length > (config ? 2 : 1))
            throw invalid(
              'tokenizer',
              `one tokenizer file is required, and at most a ${TOKENIZER_CONFIG} beside it`,
            );
          const manifest: ModelManifest = {
            files: [onnx[0]!, ...files.filter((f) => f.field === 'data')].map((f) => ({
              name: f.filename,
              sha256: f.sha256,
              bytes: f.bytes,
            })),
          };
          if (new Set(manifest.files.map((f) => f.name)).size !== manifest.files.length)
            throw invalid('data', 'two files have the same name');
          const { sha256, layout, externalFiles } = await deps.checker.model({
            modelPath: stage(manifest.files, 'model'),
            files: manifest.files,
            field: 'model',
            tokenizerPath: stage(
              tokenizerFiles(tokenizerFile.filename, tokenizerFile.sha256, config?.sha256),
              'tokenizer',
            ),
          });
          // A file the graph never names would be stored, counted and shipped for nothing: most likely a mistake.
          const stray = manifest.files.slice(1).find((f) => !externalFiles.includes(f.name));
          if (stray) throw invalid('data', `'${stray.name}' is not external data of the model`);
          const row = await keep(async (tx) => {
            const manifestBytes = serializeManifest(manifest);
            const manifestSha256 = deps.store.put(manifestBytes);
            await recordArtifact(tx, manifestSha256, 'manifest', manifestBytes.length);
            return tx.model.create({
              data: {
                tenantId: request.tenantId,
                name,
                sha256,
                manifestSha256,
                files: manifest.files as never,
                bytes: BigInt(manifest.files.reduce((n, f) => n + f.bytes, 0)),
                tokenizerSha256: tokenizerFile.sha256,
                tokenizerName: tokenizerFile.filename,
                tokenizerConfigSha256: config?.sha256 ?? null,
                layout: layout as never,
              },
            });
          });
          return reply.code(201).header('location', `/v1/models/${row.id}`).send(modelView(row));
        }),
    );

    app.get('/v1/models', { schema: { summary: 'List models', tags: ['models'] } }, async (request) => {
      const rows = await deps.db.model.findMany({
        where: { tenantId: request.tenantId },
        orderBy: { createdAt: 'desc' },
      });
      return { models: rows.map(modelView) };
    });

    app.get(
      '/v1/models/:id',
      {
        schema: {
          summary: 'A model, with its layers and prunable units',
          tags: ['models'],
          params: idParams,
        },
      },
      async (request) => {
        const row = await deps.db.model.findFirst({
          where: { id: request.params.id, tenantId: request.tenantId },
        });
        if (!row) throw notFound('model', request.params.id);
        const layout = await currentLayout(deps, row, 'id');
        const view = (u: Unit) => ({ id: u.id, params: u.params, ...(u.module ? { module: u.module } : {}) });
        return {
          ...modelView({ ...row, layout: layout as never }),
          units: {
            layer: unitsOf(layout, 'layer').map(view),
            sublayer: unitsOf(layout, 'sublayer').map(view),
          },
        };
      },
    );
  };
