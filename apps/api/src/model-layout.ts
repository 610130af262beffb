import type { Model } from '@evop/db';
import { type DecoderLayout, DISCOVERY_VERSION } from '@evop/onnx';
import type { ApiDeps } from './deps.ts';
import { withStaging } from './uploads.ts';

interface StoredFile {
  name: string;
  sha256: string;
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
    deps.checker.model({ modelPath: stage(files), files, field }),
  );
  await deps.db.model.update({ where: { id: row.id }, data: { layout: layout as never } });
  deps.log.info(
    { model: row.id, from: stored.version ?? null, to: layout.version },
    'model layout found again',
  );
  return layout;
}
