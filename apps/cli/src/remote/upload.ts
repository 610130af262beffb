import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, normalize } from 'node:path';
import { Readable } from 'node:stream';
import { TOKENIZER_CONFIG } from '@evop/data';
import { decodeModel } from '@evop/onnx';
import { CliError } from '../cli-error.ts';
import { TOKENIZER_NAMES } from '../model-source.ts';
import type { ApiClient } from './api-client.ts';
import { TransferProgress } from './transfer-progress.ts';

/** A file of a multipart upload: the form field it goes in and where it is. */
export interface FilePart {
  field: string;
  path: string;
}

/** A file name as a quoted-string of a content-disposition header. */
const quoted = (name: string) => `"${name.replace(/["\\\r\n]/g, '_')}"`;

/**
 * POSTs a multipart/form-data body of text fields and files, the files streamed from disk as it is sent (a model
 * of many GiB is never held in memory), with a progress bar on stderr; returns the JSON answer. Not retried: a
 * stream cannot be sent twice, and the server may have kept the first.
 */
export async function uploadFiles<T>(
  api: ApiClient,
  route: string,
  fields: Record<string, string>,
  files: FilePart[],
): Promise<T> {
  for (const { path } of files)
    if (!existsSync(path) || !statSync(path).isFile()) throw new CliError(`no such file '${path}'`);
  const boundary = `evop-${randomBytes(12).toString('hex')}`;
  const head = (disposition: string) =>
    Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; ${disposition}\r\n\r\n`);
  const progress = new TransferProgress(
    `uploading ${files.map((f) => basename(f.path)).join(', ')}`,
    files.reduce((n, f) => n + statSync(f.path).size, 0),
  );
  async function* body() {
    for (const [name, value] of Object.entries(fields)) {
      yield head(`name=${quoted(name)}`);
      yield Buffer.from(`${value}\r\n`);
    }
    for (const { field, path } of files) {
      yield head(`name=${quoted(field)}; filename=${quoted(basename(path))}`);
      for await (const chunk of createReadStream(path)) {
        progress.add((chunk as Buffer).length);
        yield chunk as Buffer;
      }
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${boundary}--\r\n`);
    progress.finish('waiting for the service to check the upload…');
  }
  try {
    const response = await api.send('POST', route, {
      body: Readable.toWeb(Readable.from(body())) as ReadableStream,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    return (await response.json()) as T;
  } finally {
    progress.abort(); // the server may answer before the body is sent whole: a refusal, say
  }
}

/** The external-data files an ONNX model names (paths beside it), each checked to be there. */
export function externalDataOf(modelPath: string): string[] {
  let proto: ReturnType<typeof decodeModel>;
  try {
    proto = decodeModel(readFileSync(modelPath));
  } catch (err) {
    throw new CliError(`'${modelPath}' is not an ONNX model (${(err as Error).message})`);
  }
  const names = new Set<string>();
  for (const tensor of proto.graph?.initializer ?? [])
    for (const entry of tensor.externalData) if (entry.key === 'location') names.add(normalize(entry.value));
  return [...names].map((name) => {
    const path = join(dirname(modelPath), name);
    if (!existsSync(path))
      throw new CliError(`'${modelPath}' keeps weights in '${name}', which is not beside it`);
    return path;
  });
}

/**
 * A model's tokenizer files: those given (`--tokenizer`), else the first tokenizer file beside the model; with the
 * tokenizer_config.json beside the tokenizer, which says whether BOS is added, as `evop prune` reads it.
 */
export function tokenizerFilesOf(modelPath: string, given: string[]): string[] {
  const tokenizer =
    given[0] ?? TOKENIZER_NAMES.map((n) => join(dirname(modelPath), n)).find((p) => existsSync(p));
  if (!tokenizer)
    throw new CliError(`--tokenizer: none given and no ${TOKENIZER_NAMES.join(' / ')} beside '${modelPath}'`);
  if (given.length > 1) return given;
  const config = join(dirname(tokenizer), TOKENIZER_CONFIG);
  return tokenizer.endsWith('.json') && existsSync(config) ? [tokenizer, config] : [tokenizer];
}
