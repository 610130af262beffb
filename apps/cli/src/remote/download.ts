import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ApiClient, ApiUnavailable } from './api-client.ts';
import { TransferProgress } from './transfer-progress.ts';

/** A file of a job's result as `GET /v1/jobs/:id/files` lists it. */
export interface ResultFile {
  name: string;
  sha256: string;
  bytes: number;
  url: string;
}

/** Tries per file: a connection lost mid-file starts that file again. */
const ATTEMPTS = 3;

/** A file received whole but not as the service listed it: not retried, since the service holds those bytes. */
export class DownloadMismatch extends Error {
  override readonly name = 'DownloadMismatch';
}

/** One file streamed to `path`, hashed on its way; its sha256 and size. */
async function receive(api: ApiClient, file: ResultFile, path: string, progress: TransferProgress) {
  const response = await api.send('GET', file.url, { retry: true });
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    await pipeline(
      Readable.fromWeb(response.body as never),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          bytes += chunk.length;
          progress.add(chunk.length);
          yield chunk;
        }
      },
      createWriteStream(path),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).syscall) throw err; // the disk, not the connection
    throw new ApiUnavailable(`${file.name}: the connection broke after ${bytes} bytes`);
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Downloads files into `out`, each streamed to disk and checked against the sha256 and size the service lists.
 * They are received in a staging folder inside `out` and moved into place only when every one is intact, so a
 * failed or mismatched download leaves no file behind, and a file of an earlier download is replaced whole.
 * Returns the paths written.
 */
export async function downloadFiles(api: ApiClient, files: ResultFile[], out: string): Promise<string[]> {
  mkdirSync(out, { recursive: true });
  const staging = mkdtempSync(join(out, '.evop-download-'));
  const progress = new TransferProgress(
    `downloading ${files.map((f) => f.name).join(', ')}`,
    files.reduce((n, f) => n + f.bytes, 0),
  );
  try {
    for (const file of files) {
      // A listed name is a relative path of plain names (front/6-units/model.onnx): nothing lands outside `out`.
      if (
        !file.name.split('/').every((part) => part !== '' && !part.startsWith('.') && basename(part) === part)
      )
        throw new DownloadMismatch(`the service lists a file named '${file.name}'; refusing to write it`);
      mkdirSync(dirname(join(staging, file.name)), { recursive: true });
      for (let attempt = 1; ; attempt++) {
        try {
          const got = await receive(api, file, join(staging, file.name), progress);
          if (got.sha256 !== file.sha256 || got.bytes !== file.bytes)
            throw new DownloadMismatch(
              `${file.name}: received ${got.bytes} bytes with sha256 ${got.sha256}, the service lists ` +
                `${file.bytes} bytes with sha256 ${file.sha256}; nothing was written`,
            );
          break;
        } catch (err) {
          if (!(err instanceof ApiUnavailable) || attempt === ATTEMPTS) throw err;
          process.stderr.write(`evop: ${err.message}; downloading it again\n`);
        }
      }
    }
    progress.finish();
    return files.map((file) => {
      const path = join(out, file.name);
      mkdirSync(dirname(path), { recursive: true });
      renameSync(join(staging, file.name), path);
      return path;
    });
  } finally {
    progress.abort();
    rmSync(staging, { recursive: true, force: true });
  }
}
