import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { linkOrCopy } from './artifact-store.ts';

/** One file of a model as stored: its name beside the .onnx file (external data is found by name). */
export interface ModelFile {
  name: string;
  sha256: string;
  bytes: number;
}

/**
 * A model as content-addressed artifacts: the .onnx file first, then its external-data files. The manifest is
 * itself an artifact; its sha256 names the model in tasks.
 */
export interface ModelManifest {
  files: ModelFile[];
}

/** File names a model may hold: plain names, no folders, nothing hidden. */
export const SAFE_FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$/;

export function parseManifest(bytes: Uint8Array): ModelManifest {
  const manifest = JSON.parse(Buffer.from(bytes).toString('utf8')) as ModelManifest;
  if (!Array.isArray(manifest.files) || manifest.files.length === 0)
    throw new RangeError('a model manifest lists at least its .onnx file');
  for (const f of manifest.files)
    if (!SAFE_FILE_NAME.test(f.name) || basename(f.name) !== f.name)
      throw new RangeError(`model file name '${f.name}' is not a plain file name`);
  return manifest;
}

export const serializeManifest = (manifest: ModelManifest) => Buffer.from(JSON.stringify(manifest));

/**
 * Artifacts under `dir` by their file names, as hard links (see `linkOrCopy`), so that onnxruntime finds a
 * model's external data beside its .onnx file and a tokenizer's name says its format. Returns the first file's
 * path.
 */
export function linkFiles(
  files: readonly Pick<ModelFile, 'name' | 'sha256'>[],
  pathOf: (sha256: string) => string,
  dir: string,
): string {
  mkdirSync(dir, { recursive: true });
  for (const file of files) linkOrCopy(pathOf(file.sha256), join(dir, file.name));
  return join(dir, files[0]!.name);
}
