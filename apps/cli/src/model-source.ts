import { existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { loadTokenizer, type Tokenizer } from '@evop/data';
import {
  type DecoderLayout,
  discoverLayers,
  type LoadedModel,
  llama2cToOnnx,
  readLlama2cCheckpoint,
  readModel,
  writeModel,
} from '@evop/onnx';
import { checkVocabulary } from '@evop/pipeline';
import { CliError } from './cli-error.ts';

export interface ModelSource {
  model: LoadedModel;
  layout: DecoderLayout;
  tokenizer: Tokenizer;
  tokenizerPath: string;
}

/**
 * A model's own name, for titles: its file's name without the extension (`stories260K` of stories260K.bin), or
 * its folder's when the file has an exporter's generic name (`model.onnx`, `model.ts.onnx`).
 */
export function modelName(path: string): string {
  const stem = basename(path, extname(path));
  const generic = stem === 'model' || stem.startsWith('model.');
  return generic ? basename(dirname(resolve(path))) || stem : stem;
}

/** Tokenizer files looked for beside a model when none is given. */
export const TOKENIZER_NAMES = ['tokenizer.json', 'tokenizer.bin', 'tok512.bin'];

/** A model file: an ONNX export, or a llama2.c checkpoint (`.bin`) converted to ONNX into `workDir`. */
export function loadModelFile(
  modelPath: string,
  workDir: string,
): { model: LoadedModel; layout: DecoderLayout } {
  let onnxPath = modelPath;
  if (modelPath.endsWith('.bin')) {
    mkdirSync(workDir, { recursive: true });
    onnxPath = join(workDir, 'source.onnx');
    if (!existsSync(onnxPath)) writeModel(llama2cToOnnx(readLlama2cCheckpoint(modelPath)), onnxPath);
  }
  const model = readModel(onnxPath);
  return { model, layout: discoverLayers(model.proto) };
}

/**
 * The model to prune: an ONNX export, or a llama2.c checkpoint (`.bin`) converted to ONNX into `workDir`.
 * The tokenizer is `--tokenizer`, else a tokenizer file beside the model; it must fit the model's vocabulary.
 */
export function loadModelSource(
  modelPath: string,
  tokenizerPath: string | undefined,
  workDir: string,
): ModelSource {
  if (!existsSync(modelPath)) throw new CliError(`--model: no such file '${modelPath}'`);
  const tokenizerFile =
    tokenizerPath ?? TOKENIZER_NAMES.map((n) => join(dirname(modelPath), n)).find((p) => existsSync(p));
  if (!tokenizerFile)
    throw new CliError(`--tokenizer: none given and no ${TOKENIZER_NAMES.join(' / ')} beside '${modelPath}'`);
  if (!existsSync(tokenizerFile)) throw new CliError(`--tokenizer: no such file '${tokenizerFile}'`);
  const { model, layout } = loadModelFile(modelPath, workDir);
  const tokenizer = loadTokenizer(tokenizerFile);
  checkVocabulary(layout, tokenizer);
  return { model, layout, tokenizer, tokenizerPath: tokenizerFile };
}
