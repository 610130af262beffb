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
      // model.onnx first, then whatever external data the writer put beside it; streamed, never read whole.
      const names = ['model.onnx', ...readdirSync(outDir).filter((n) => n !== 'model.onnx')];
      const files: ModelFile[] = [];
      for (const name of names) files.push({ name, ...(await client.uploadFile(join(outDir, name))) });
      const { path: _path, ...result } = finalized;
      return { ...result, modelManifestSha256: await client.upload(serializeManifest({ files })) };
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  };
}
