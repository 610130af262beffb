import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ArtifactStore, linkFiles, SAFE_FILE_NAME } from '@evop/data';
import type { Transaction } from '@evop/db';
import type { FastifyRequest } from 'fastify';
import { keepingArtifacts, recordArtifact } from './artifact-records.ts';
import type { ApiDeps } from './deps.ts';
import { ApiError, invalid } from './problem.ts';
import { tenantStorage } from './tenant-storage.ts';

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

/** Links artifacts by file name into a folder of the staging area; returns the first file's path. */
export type Stage = (files: readonly { name: string; sha256: string }[], subfolder?: string) => string;

/** Where uploads wait while they are checked: beside the store, on its device (keeping one is a link). */
export const stagingRoot = (store: ArtifactStore) => join(store.dir, '..', 'staging');

/** This process's staging folders in use (garbage collection removes only others, and only old ones). */
export const stagingInUse = new Set<string>();

/**
 * Runs `use` with a fresh staging folder, removed after. Readers name the file they refuse: a refusal's detail
 * is given the client's view, without the server's folders.
 */
async function withStagingFolder<T>(store: ArtifactStore, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(stagingRoot(store), randomBytes(8).toString('hex'));
  mkdirSync(dir, { recursive: true });
  stagingInUse.add(dir);
  try {
    return await use(dir);
  } catch (err) {
    if (err instanceof ApiError)
      throw new ApiError(err.status, err.title, err.detail.replaceAll(`${dir}/`, ''), err.headers);
    throw err;
  } finally {
    stagingInUse.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

const stager =
  (dir: string, pathOf: (sha256: string) => string): Stage =>
  (files, subfolder = '') =>
    linkFiles(files, pathOf, join(dir, subfolder));

/** Runs `use` with stored artifacts linked under their file names (readModel finds external data beside them). */
export function withStaging<T>(store: ArtifactStore, use: (stage: Stage) => Promise<T>): Promise<T> {
  return withStagingFolder(store, (dir) => use(stager(dir, (sha) => store.storedPath(sha))));
}

/** An upload received into the staging area, not yet in the store. */
export interface Upload {
  files: UploadedFile[];
  fields: Record<string, string>;
  /** Links received files under their names into a staging folder, to be checked. */
  stage: Stage;
  /**
   * Keeps the upload: its files move into the store and `create` writes the rows naming them, in one
   * transaction that garbage collection waits for; the tenant's storage quota is checked there again.
   */
  keep<T>(create: (tx: Transaction) => Promise<T>): Promise<T>;
}

/**
 * A multipart/form-data upload, each file streamed into a staging area with its sha256 computed on the way (never
 * held in memory) within the upload limit and the tenant's storage quota; text fields collected. `use` checks it
 * and calls `keep`; an upload not kept (refused, or failed) leaves nothing behind. Files of fields not in
 * `fileFields` and names that are not plain file names are refused.
 */
export function withUpload<T>(
  request: FastifyRequest,
  deps: ApiDeps,
  fileFields: readonly string[],
  use: (upload: Upload) => Promise<T>,
): Promise<T> {
  if (!request.isMultipart())
    throw new ApiError(415, 'Unsupported Media Type', 'send multipart/form-data (curl -F field=@file)');
  return withStagingFolder(deps.store, async (dir) => {
    const incoming = new ArtifactStore(join(dir, 'incoming'));
    const room = await tenantStorage(deps).room(request.tenantId);
    const { files, fields } = await receive(request, incoming, fileFields, room);
    const total = files.reduce((n, f) => n + f.bytes, 0);
    return use({
      files,
      fields,
      stage: stager(dir, (sha) => incoming.storedPath(sha)),
      keep: (create) =>
        keepingArtifacts(deps.db, async (tx) => {
          await tenantStorage(deps).ensureRoom(tx, request.tenantId, files[0]?.field ?? 'body', total);
          for (const f of files) {
            deps.store.adopt(incoming.storedPath(f.sha256), f.sha256);
            await recordArtifact(tx, f.sha256, f.field, f.bytes);
          }
          return create(tx);
        }),
    });
  });
}

async function receive(
  request: FastifyRequest,
  incoming: ArtifactStore,
  fileFields: readonly string[],
  room: { bytes: number; tooLarge: (field: string) => ApiError },
): Promise<{ files: UploadedFile[]; fields: Record<string, string> }> {
  const received: UploadedFile[] = [];
  const fields: Record<string, string> = {};
  let total = 0;
  // A refusal is answered once the body has been read to its end: a client still sending would see its
  // connection cut (fetch and most HTTP libraries report that, not the answer).
  let refusal: ApiError | undefined;
  let field = 'body'; // the part being read
  try {
    for await (const part of request.parts()) {
      field = part.fieldname;
      if (part.type === 'field') {
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (refusal) {
        part.file.resume();
        continue;
      }
      if (!fileFields.includes(part.fieldname)) {
        part.file.resume();
        refusal = invalid(part.fieldname, `unexpected file field; send ${fileFields.join(', ')}`);
        continue;
      }
      if (!SAFE_FILE_NAME.test(part.filename)) {
        part.file.resume();
        refusal = invalid(part.fieldname, `file name '${part.filename}' is not a plain file name`);
        continue;
      }
      // Past the room left, bytes are read and dropped: the body is read to its end either way.
      const limit = room.bytes - total;
      let over = false;
      async function* within(file: AsyncIterable<Buffer>) {
        let seen = 0;
        for await (const chunk of file) {
          over ||= seen + chunk.length > limit;
          seen += chunk.length;
          if (!over) yield chunk;
        }
      }
      try {
        const { sha256, bytes } = await incoming.putStream(Readable.from(within(part.file)));
        if (over || part.file.truncated) {
          refusal = room.tooLarge(part.fieldname);
          continue;
        }
        total += bytes;
        received.push({ field: part.fieldname, filename: part.filename, sha256, bytes });
      } catch (err) {
        if ((err as { code?: string }).code !== 'FST_REQ_FILE_TOO_LARGE') throw err;
        refusal = room.tooLarge(part.fieldname);
      }
    }
  } catch (err) {
    // The multipart parser's own errors (no boundary, a body cut off, a broken part header) carry no code,
    // where the file system's and the database's do: those are the client's body.
    // A file past the multipart limit (EVOP_MAX_UPLOAD_BYTES) is cut by the parser, which then throws.
    if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw room.tooLarge(field);
    if (err instanceof Error && !(err instanceof ApiError) && !(err as { code?: string }).code)
      throw new ApiError(
        400,
        'Bad Request',
        `body: not a well-formed multipart/form-data body (${err.message})`,
      );
    throw err;
  }
  if (refusal) throw refusal;
  return { files: received, fields };
}
