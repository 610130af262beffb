import type { Model } from '@evop/db';
import { type DecoderLayout, DISCOVERY_VERSION, discoverLayers, ModelError, readModel } from '@evop/onnx';
import type { ApiDeps } from './deps.ts';
import { invalid } from './problem.ts';
import { withStaging } from './uploads.ts';

interface StoredFile {
  name: string;
  sha256: string;
}

/**
 * A model staged from the store read and its layers discovered. Its files were hashed on their way in, so the
 * model's identity follows without reading its weights again. A graph evop cannot prune is a 422 naming `field`.
 */
export function discoverStaged(path: string, files: readonly StoredFile[], field: string) {
  let model: ReturnType<typeof readModel>;
  try {
    model = readModel(path, { fileSha256: Object.fromEntries(files.map((f) => [f.name, f.sha256])) });
  } catch (err) {
    throw invalid(field, `not a readable ONNX model (${(err as Error).message})`);
  }
  try {
    return { model, layout: discoverLayers(model.proto) };
  } catch (err) {
    if (err instanceof ModelError) throw invalid(field, err.message);
    throw invalid(field, `not a decoder-only transformer (${(err as Error).message})`);
  }
}

/**
 * The model's layout as this evop's discovery finds it: the stored one when the same discovery stored it, else
 * found again from the stored files and kept (a model uploaded before an upgrade is planned on today's units).
 */
export async function currentLayout(deps: ApiDeps, row: Model, field = 'modelId'): Promise<DecoderLayout> {
  const stored = row.layout as unknown as DecoderLayout;
  if (stored.version === DISCOVERY_VERSION) return stored;
  const files = row.files as unknown as StoredFile[];
  const { layout } = await withStaging(deps.store, async (stage) =>
    discoverStaged(stage(files), files, field),
  );
  await deps.db.model.update({ where: { id: row.id }, data: { layout: layout as never } });
  deps.log.info(
    { model: row.id, from: stored.version ?? null, to: layout.version },
    'model layout found again',
  );
  return layout;
}
