import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { networkReason, Unavailable, withRetries } from '@evop/config';
import { ArtifactError, type ArtifactStore } from './artifact-store.ts';
import { linkFiles, type ModelFile } from './model-manifest.ts';

export interface ArtifactClientOptions {
  /** The local cache fetched artifacts are kept in. */
  store: ArtifactStore;
  /** The API's base URL, e.g. http://api:3000. */
  apiUrl: string;
  /** The service token the API's /internal routes require (EVOP_SERVICE_TOKEN). */
  token: string;
  /**
   * Waits before each new try of a request the API did not answer, or answered with a 5xx (default about 30 s in
   * all: an API restarting on a loaded machine; a task's own retries come after these).
   */
  retryDelaysMs?: readonly number[];
}

const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000];

/**
 * Artifacts for coordinators and workers: served from the local cache when present and intact, otherwise
 * fetched from the API once, sha256-checked on the way in. A cached copy that no longer matches its name is
 * dropped by the store and fetched again.
 */
export class ArtifactClient {
  constructor(private readonly options: ArtifactClientOptions) {}

  get store(): ArtifactStore {
    return this.options.store;
  }

  private url(sha256: string): string {
    return `${this.options.apiUrl.replace(/\/$/, '')}/internal/artifacts/${sha256}`;
  }

  private get headers(): Record<string, string> {
    return { authorization: `Bearer ${this.options.token}` };
  }

  /** A verified local path to the artifact. */
  async path(sha256: string): Promise<string> {
    try {
      return await this.store.verifiedPath(sha256);
    } catch (err) {
      if (!(err instanceof ArtifactError)) throw err;
    }
    const response = await this.request(`fetching artifact ${sha256}`, () =>
      fetch(this.url(sha256), { headers: this.headers }),
    );
    if (response.status === 404) throw new ArtifactError(sha256, 'missing');
    if (!response.ok || !response.body)
      throw new Error(`fetching artifact ${sha256}: HTTP ${response.status} ${await response.text()}`);
    await this.store.putStream(Readable.fromWeb(response.body as never), { expectedSha256: sha256 });
    return this.store.storedPath(sha256);
  }

  /**
   * Artifacts fetched and linked under `dir` by their file names (a model's .onnx beside its external data, a
   * tokenizer or corpus whose name says its format). Returns the first file's path.
   */
  async linked(files: readonly Pick<ModelFile, 'name' | 'sha256'>[], dir: string): Promise<string> {
    const paths = new Map<string, string>();
    for (const file of files) paths.set(file.sha256, await this.path(file.sha256));
    return linkFiles(files, (sha) => paths.get(sha)!, dir);
  }

  async read(sha256: string): Promise<Buffer> {
    await this.path(sha256);
    return this.store.read(sha256);
  }

  /** Stores bytes locally and on the API; returns their sha256. */
  async upload(bytes: Uint8Array): Promise<string> {
    const sha256 = this.store.put(bytes);
    await this.send(sha256);
    return sha256;
  }

  /** Stores a file (of any size, streamed, never read whole) locally and on the API; returns its sha256. */
  async uploadFile(path: string): Promise<{ sha256: string; bytes: number }> {
    const stored = await this.store.putFile(path);
    await this.send(stored.sha256);
    return stored;
  }

  private async send(sha256: string): Promise<void> {
    // The body is opened again for each try: a stream is read once.
    const response = await this.request(`uploading artifact ${sha256}`, () =>
      fetch(this.url(sha256), {
        method: 'PUT',
        headers: { ...this.headers, 'content-type': 'application/octet-stream' },
        body: Readable.toWeb(createReadStream(this.store.storedPath(sha256))) as never,
        duplex: 'half',
      } as RequestInit),
    );
    if (!response.ok)
      throw new Error(`uploading artifact ${sha256}: HTTP ${response.status} ${await response.text()}`);
  }

  /** A request to the API, tried again while it is not answered or answers 5xx (an API restarting). */
  private request(what: string, send: () => Promise<Response>): Promise<Response> {
    return withRetries(
      async () => {
        let response: Response;
        try {
          response = await send();
        } catch (err) {
          throw new Unavailable(`${what}: cannot reach ${this.options.apiUrl} (${networkReason(err)})`);
        }
        if (response.status >= 500)
          throw new Unavailable(`${what}: HTTP ${response.status} ${await response.text()}`);
        return response;
      },
      { delaysMs: this.options.retryDelaysMs ?? RETRY_DELAYS_MS },
    );
  }
}
