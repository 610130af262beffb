import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type ArtifactStore, ArtifactTooLargeError, linkFiles, SAFE_FILE_NAME } from '@evop/data';
import type { Database } from '@evop/db';
import type { FastifyRequest } from 'fastify';
import { recordArtifact } from './artifact-records.ts';
import { ApiError, invalid } from './problem.ts';

/**
 * The `name` field of an upload: 1 to 200 characters, none of them control characters (PostgreSQL refuses NUL in
 * text; the others would corrupt listings).
 */
export function uploadName(value: string | undefined): string {
  const name = value?.trim();
  if (!name || name.length > 200) throw invalid('name', 'required, 1 to 200 characters');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(name)) throw invalid('name', 'control characters are not allowed');
  return name;
}

export interface UploadedFile {
  field: string;
  filename: string;
  sha256: string;
  bytes: number;
}

/**
 * A multipart/form-data upload, each file streamed into the artifact store with its sha256 computed on the way
 * (never held in memory) and the upload limit enforced; text fields collected. Files of fields not in `files`
 * and names that are not plain file names are refused.
 */
export async function receiveUpload(
  request: FastifyRequest,
  db: Database,
  store: ArtifactStore,
  files: readonly string[],
  maxBytes: number,
): Promise<{ files: UploadedFile[]; fields: Record<string, string> }> {
  if (!request.isMultipart())
    throw new ApiError(415, 'Unsupported Media Type', 'send multipart/form-data (curl -F field=@file)');
  const received: UploadedFile[] = [];
  const fields: Record<string, string> = {};
  let total = 0;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (!files.includes(part.fieldname)) {
        part.file.resume();
        throw invalid(part.fieldname, `unexpected file field; send ${files.join(', ')}`);
      }
      if (!SAFE_FILE_NAME.test(part.filename)) {
        part.file.resume();
        throw invalid(part.fieldname, `file name '${part.filename}' is not a plain file name`);
      }
      try {
        const { sha256, bytes } = await store.putStream(part.file, { maxBytes: maxBytes - total });
        total += bytes;
        await recordArtifact(db, sha256, part.fieldname, bytes);
        received.push({ field: part.fieldname, filename: part.filename, sha256, bytes });
      } catch (err) {
        if (
          err instanceof ArtifactTooLargeError ||
          (err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE'
        )
          throw new ApiError(
            413,
            'Content Too Large',
            `${part.fieldname}: the upload is over ${maxBytes} bytes`,
          );
        throw err;
      }
    }
  } catch (err) {
    // The multipart parser's own errors (no boundary, a body cut off, a broken part header) carry no code,
    // where the file system's and the database's do: those are the client's body.
    if (err instanceof Error && !(err instanceof ApiError) && !(err as { code?: string }).code)
      throw new ApiError(
        400,
        'Bad Request',
        `body: not a well-formed multipart/form-data body (${err.message})`,
      );
    throw err;
  }
  return { files: received, fields };
}

/** Links uploaded artifacts by file name into a folder of the staging area; returns the first file's path. */
export type Stage = (files: readonly { name: string; sha256: string }[], subfolder?: string) => string;

/**
 * Runs `use` with a fresh staging folder where uploaded artifacts are linked under their file names (readModel
 * finds external data beside the .onnx file, readCorpus tells JSONL by its name); the folder is removed after.
 */
export async function withStaging<T>(store: ArtifactStore, use: (stage: Stage) => Promise<T>): Promise<T> {
  const dir = join(store.dir, '..', 'staging', randomBytes(8).toString('hex'));
  try {
    return await use((files, subfolder = '') =>
      linkFiles(files, (sha) => store.storedPath(sha), join(dir, subfolder)),
    );
  } catch (err) {
    // Readers name the file they refuse: the client sees its own file name, never the server's folders.
    if (err instanceof ApiError)
      throw new ApiError(err.status, err.title, err.detail.replaceAll(`${dir}/`, ''), err.headers);
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
