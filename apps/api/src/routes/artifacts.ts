import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { ArtifactError, ArtifactTooLargeError, parseManifest } from '@evop/data';
import type { Result } from '@evop/db';
import { frontDir, type PruneReport, renderReportHtml } from '@evop/pipeline/control';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { recordArtifact } from '../artifact-records.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, notFound } from '../problem.ts';
import { resultPoints } from '../result-points.ts';
import { idParams } from '../views.ts';

const shaParams = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256') });

const resultFiles = z.object({
  files: z.array(
    z.object({
      name: z
        .string()
        .describe('the file to save it as, relative to the result folder (front/6-units/model.onnx)'),
      sha256: z.string().describe('lowercase hex sha256 of the bytes its url answers'),
      bytes: z.number().int(),
      url: z.string().describe('its download route, relative to the API'),
    }),
  ),
});

/** report.json as served: the report stored with the result, as it was written. */
const reportJson = (result: Result) => Buffer.from(result.report);
/** report.html as served: rendered from the stored report (the same bytes each time). */
const reportHtml = (result: Result) =>
  Buffer.from(renderReportHtml(JSON.parse(result.report) as PruneReport));
const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * Downloads for users (a job's pruned model files and report) and the content-addressed artifact store for
 * coordinators and workers (/internal, service token).
 */
export const artifactRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;
    // Streamed from disk, whatever the size; hashed again only when the file changed since it was last checked.
    const sendArtifact = async (sha256: string, reply: { header: (k: string, v: string) => unknown }) => {
      let path: string;
      try {
        path = await store.verifiedPath(sha256);
      } catch (err) {
        if (err instanceof ArtifactError) throw new ApiError(404, 'Not Found', err.message);
        throw err;
      }
      reply.header('content-length', String(statSync(path).size));
      return createReadStream(path);
    };

    // Bodies of artifact uploads are streams, handed to the store as they arrive.
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

    app.get(
      '/internal/artifacts/:sha256',
      { config: { auth: 'service' }, schema: { hide: true, params: shaParams } },
      async (request, reply) => {
        const stream = await sendArtifact(request.params.sha256, reply);
        return reply.type('application/octet-stream').send(stream);
      },
    );

    app.put(
      '/internal/artifacts/:sha256',
      {
        config: { auth: 'service' },
        bodyLimit: deps.config.maxUploadBytes,
        schema: { hide: true, params: shaParams },
      },
      async (request, reply) => {
        const { sha256 } = request.params;
        try {
          const { bytes } = await store.putStream(request.body as NodeJS.ReadableStream, {
            expectedSha256: sha256,
            maxBytes: deps.config.maxUploadBytes,
          });
          await recordArtifact(deps.db, sha256, 'internal', bytes);
          return reply.code(201).send({ sha256, bytes });
        } catch (err) {
          if (err instanceof ArtifactError)
            throw new ApiError(422, 'Unprocessable Content', 'body: its sha256 is not the one named');
          if (err instanceof ArtifactTooLargeError)
            throw new ApiError(413, 'Content Too Large', `body: ${err.message}`);
          throw err;
        }
      },
    );

    const succeeded = async (id: string, tenantId: string) => {
      const job = await deps.db.job.findFirst({ where: { id, tenantId }, include: { result: true } });
      if (!job) throw notFound('job', id);
      if (!job.result) throw new ApiError(409, 'Conflict', `job '${id}' has no result (it is ${job.status})`);
      return job.result;
    };

    /** A file of a result's model, as a download. */
    const sendModelFile = async (
      manifestSha256: string,
      fileName: string,
      reply: FastifyReply,
      what = 'the pruned model',
    ) => {
      const manifest = parseManifest(store.read(manifestSha256));
      const file = manifest.files.find((f) => f.name === fileName);
      if (!file)
        throw new ApiError(
          404,
          'Not Found',
          `file: ${what} has ${manifest.files.map((f) => f.name).join(', ')}, not '${fileName}'`,
        );
      const stream = await sendArtifact(file.sha256, reply);
      return reply
        .type('application/octet-stream')
        .header('content-disposition', `attachment; filename="${file.name}"`)
        .send(stream);
    };

    app.get(
      '/v1/jobs/:id/artifacts/:file',
      {
        schema: {
          summary: "Download a file of the job's pruned model (model.onnx, external data)",
          tags: ['jobs'],
          params: idParams.extend({ file: z.string().min(1).max(200) }),
        },
      },
      async (request, reply) => {
        const result = await succeeded(request.params.id, request.tenantId);
        return sendModelFile(result.modelManifestSha256, request.params.file, reply);
      },
    );

    app.get(
      '/v1/jobs/:id/front/:units/artifacts/:file',
      {
        schema: {
          summary: "Download a file of the pruned model at one point of the job's quality–speed front",
          description:
            "A job with `spec.front` has a model per target: the spec's own target at /v1/jobs/:id/artifacts, each " +
            "other one here, by the units it prunes (report.json's `front` lists them).",
          tags: ['jobs'],
          params: idParams.extend({
            units: z.coerce.number().int().min(1),
            file: z.string().min(1).max(200),
          }),
        },
      },
      async (request, reply) => {
        const { id, units, file } = request.params;
        const points = resultPoints(await succeeded(id, request.tenantId));
        const point = points.find((p) => p.units === units);
        if (!point)
          throw new ApiError(
            404,
            'Not Found',
            `units: the job's front has points at ${points.map((p) => p.units).join(', ') || 'no units (it has no front)'}` +
              `, not ${units}`,
          );
        return sendModelFile(point.modelManifestSha256, file, reply, `the model pruning ${units} units`);
      },
    );

    app.get(
      '/v1/jobs/:id/files',
      {
        schema: {
          summary: "The files of a job's result, each with its size and sha256",
          description:
            'Every file of the pruned model (model.onnx, its external data), then report.json and report.html, ' +
            "then each front point's model files as front/<units>-units/<file>: what a client downloads to have " +
            'the whole result, and the sha256 to check each one against.',
          tags: ['jobs'],
          params: idParams,
          response: { 200: resultFiles },
        },
      },
      async (request) => {
        const { id } = request.params;
        const result = await succeeded(id, request.tenantId);
        const report = (name: string, bytes: Buffer) => ({
          name,
          sha256: sha256Of(bytes),
          bytes: bytes.length,
          url: `/v1/jobs/${id}/${name}`,
        });
        const modelFiles = (manifestSha256: string, prefix: string, route: string) =>
          parseManifest(store.read(manifestSha256)).files.map((f) => ({
            name: `${prefix}${f.name}`,
            sha256: f.sha256,
            bytes: f.bytes,
            url: `${route}/${encodeURIComponent(f.name)}`,
          }));
        return {
          files: [
            ...modelFiles(result.modelManifestSha256, '', `/v1/jobs/${id}/artifacts`),
            report('report.json', reportJson(result)),
            report('report.html', reportHtml(result)),
            ...resultPoints(result).flatMap((p) =>
              modelFiles(
                p.modelManifestSha256,
                `${frontDir(p.units)}/`,
                `/v1/jobs/${id}/front/${p.units}/artifacts`,
              ),
            ),
          ],
        };
      },
    );

    app.get(
      '/v1/jobs/:id/report.json',
      { schema: { summary: "The job's report", tags: ['jobs'], params: idParams } },
      async (request, reply) =>
        reply.type('application/json').send(reportJson(await succeeded(request.params.id, request.tenantId))),
    );

    app.get(
      '/v1/jobs/:id/report.html',
      { schema: { summary: "The job's report as a self-contained page", tags: ['jobs'], params: idParams } },
      async (request, reply) => {
        const result = await succeeded(request.params.id, request.tenantId);
        return reply.type('text/html; charset=utf-8').send(reportHtml(result));
      },
    );
  };
