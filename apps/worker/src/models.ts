import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ArtifactClient,
  loadTokenizer,
  parseManifest,
  type Tokenizer,
  tokenizerFiles,
} from '@evop/data';
import {
  type DecoderLayout,
  DISCOVERY_VERSION,
  type Granularity,
  type LoadedModel,
  readModel,
} from '@evop/onnx';
import type { ModelRef } from '@evop/queue';
import { type InferencePool, OnnxEvaluator } from '@evop/runtime';
import { PromiseCache } from './promise-cache.ts';

/**
 * The models a worker has fetched, by manifest sha256: files fetched once into the artifact cache, linked into a
 * folder by their names, read once; one evaluator per (model, granularity). At most `limit` models are kept:
 * the least recently used one's folder, graphs and evaluators are removed (its sessions go with its files, and
 * its artifacts become free for the cache to remove).
 */
export class Models {
  private readonly models: PromiseCache<{ model: LoadedModel; layout: DecoderLayout }>;
  private readonly evaluators = new PromiseCache<OnnxEvaluator>();

  constructor(
    private readonly client: ArtifactClient,
    private readonly pool: InferencePool,
    private readonly cacheDir: string,
    limit = Number.POSITIVE_INFINITY,
  ) {
    this.models = new PromiseCache(limit, (manifestSha256, entry) => {
      for (const key of this.evaluators.keys())
        if (key.startsWith(`${manifestSha256}/`)) this.evaluators.delete(key);
      rmSync(join(this.cacheDir, 'models', manifestSha256), { recursive: true, force: true });
      entry
        .then(({ model }) => rmSync(join(this.graphDir, model.sha256), { recursive: true, force: true }))
        .catch(() => {});
    });
  }

  private get graphDir(): string {
    return join(this.cacheDir, 'graphs');
  }

  /** Manifest sha256 of every model with an evaluator ready. */
  get loaded(): string[] {
    return [...new Set(this.evaluators.keys().map((k) => k.split('/')[0]!))];
  }

  model({ modelSha256, layoutSha256 }: ModelRef): Promise<{ model: LoadedModel; layout: DecoderLayout }> {
    return this.models.get(modelSha256, async () => {
      const manifest = parseManifest(await this.client.read(modelSha256));
      const path = await this.client.linked(manifest.files, join(this.cacheDir, 'models', modelSha256));
      const model = readModel(path, {
        fileSha256: Object.fromEntries(manifest.files.map((f) => [f.name, f.sha256])),
      });
      // The layout the API found once and stored; the self-check still proves it on this model before use.
      const layout = JSON.parse((await this.client.read(layoutSha256)).toString('utf8')) as DecoderLayout;
      if (layout.version !== DISCOVERY_VERSION)
        throw new Error(
          `the job's layout is of discovery version ${layout.version}, this worker's is ${DISCOVERY_VERSION}: ` +
            "run workers of the API's evop version",
        );
      return { model, layout };
    });
  }

  evaluator(ref: ModelRef, granularity: Granularity): Promise<OnnxEvaluator> {
    return this.evaluators.get(`${ref.modelSha256}/${granularity}`, async () => {
      const { model, layout } = await this.model(ref);
      return OnnxEvaluator.create({
        pool: this.pool,
        model,
        layout,
        granularity,
        cacheDir: this.graphDir,
      });
    });
  }

  /** A tokenizer artifact, under its file name (the name says its format), with its config when it has one. */
  async tokenizer(name: string, sha256: string, configSha256?: string): Promise<Tokenizer> {
    const files = tokenizerFiles(name, sha256, configSha256);
    return loadTokenizer(
      await this.client.linked(
        files,
        join(this.cacheDir, 'tokenizers', `${sha256}-${configSha256 ?? 'none'}`),
      ),
    );
  }
}
