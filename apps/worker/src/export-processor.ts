import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type ArtifactClient, type ModelFile, serializeManifest } from '@evop/data';
import { finalize, planSearch } from '@evop/pipeline';
import type { ExportResult, ExportTask } from '@evop/queue';
import type { InferencePool } from '@evop/runtime';
import type { Models } from './models.ts';
import type { WindowSets } from './window-sets.ts';

/**
 * The finalize stage on a worker: the pipeline's own `finalize` (export, held-out evaluation, zero-shot tasks,
 * latency), then the pruned model's files and manifest uploaded to the API. Each step's description goes to
 * `stage` (the task's progress, which the coordinator shows as the job's stage).
 */
export function exportProcessor(
  models: Models,
  windows: WindowSets,
  client: ArtifactClient,
  pool: InferencePool,
  cacheDir: string,
) {
  return async (
    task: ExportTask,
    signal: AbortSignal,
    stage: (message: string) => void = () => {},
  ): Promise<ExportResult> => {
    const { model, layout } = await models.model(task);
    const { units, space } = planSearch(layout, task.spec);
    const outDir = join(cacheDir, 'exports', task.jobId);
    rmSync(outDir, { recursive: true, force: true });
    try {
      const finalized = await finalize({
        pool,
        model,
        layout,
        tokenizer: await models.tokenizer(
          task.tokenizerName,
          task.tokenizerSha256,
          task.tokenizerConfigSha256,
        ),
        spec: task.spec,
        units,
        space,
        searches: task.searches,
        front: task.front,
        heldOut: {
          windows: await windows.get(task.heldOutSha256),
          clusters: await windows.clusters(task.heldOutClustersSha256),
        },
        datasets: await Promise.all(
          task.datasets.map(async (d) => ({ ...d, windows: await windows.get(d.windowsSha256) })),
        ),
        outDir,
        cacheDir: join(cacheDir, 'graphs'),
        signal,
        stage,
      });
      const { path: _path, front, ...result } = finalized;
      const modelManifestSha256 = await uploadModel(client, outDir);
      const points: ExportResult['front'] = [];
      for (const { dir, ...point } of front)
        points.push({ ...point, modelManifestSha256: await uploadModel(client, join(outDir, dir)) });
      return { ...result, modelManifestSha256, front: points };
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  };
}

/** A pruned model's files in `dir` uploaded (model.onnx first, then its external data), and their manifest. */
async function uploadModel(client: ArtifactClient, dir: string): Promise<string> {
  const files: ModelFile[] = [];
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name !== 'model.onnx')
    .map((e) => e.name);
  // Streamed, never read whole.
  for (const name of ['model.onnx', ...names])
    files.push({ name, ...(await client.uploadFile(join(dir, name))) });
  return client.upload(serializeManifest({ files }));
}
