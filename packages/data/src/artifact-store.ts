import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '@evop/config';

/** An artifact the store does not have, or whose bytes no longer match their sha256 (removed: fetch it again). */
export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
  constructor(
    readonly sha256: string,
    readonly reason: 'missing' | 'corrupt',
  ) {
    super(
      `artifact ${sha256} is ${reason === 'missing' ? 'not in the store' : 'corrupt (sha256 mismatch); removed'}`,
    );
  }
}

const SHA256 = /^[0-9a-f]{64}$/;

/** A stream longer than the limit it was given; nothing was stored. */
export class ArtifactTooLargeError extends UserError {
  override readonly name = 'ArtifactTooLargeError';
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
  }
}

/** What a file was when its bytes were last found to match its name. */
interface Verified {
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface ArtifactStoreOptions {
  /**
   * Bytes the store may hold (default: no limit). Past it, storing an artifact removes the least recently used
   * ones that nothing else links to (a model folder's hard link keeps its files; removing them would free nothing).
   */
  maxBytes?: number;
}

/**
 * Content-addressed files under one folder (`<dir>/<sha[0..2]>/<sha>`), written atomically, checked on read.
 * Files of any size are hashed as streams, never read whole; a file is hashed again only when it changed since
 * it was last found intact (size, modification time, inode), so a worker does not re-read 13 GB of weights per
 * task, yet a copy damaged on disk is still caught and removed.
 */
export class ArtifactStore {
  private readonly verified = new Map<string, Verified>();
  private readonly verifying = new Map<string, Promise<string>>();
  /** Artifacts by last use, least recent first (Map order); files of earlier processes come in by age. */
  private readonly used = new Map<string, true>();

  constructor(
    readonly dir: string,
    private readonly options: ArtifactStoreOptions = {},
  ) {}

  private file(sha256: string): string {
    if (!SHA256.test(sha256)) throw new RangeError(`'${sha256}' is not a sha256`);
    this.used.delete(sha256);
    this.used.set(sha256, true);
    return join(this.dir, sha256.slice(0, 2), sha256);
  }

  private remember(sha256: string): void {
    const { size, mtimeMs, ino } = statSync(this.file(sha256));
    this.verified.set(sha256, { size, mtimeMs, ino });
  }

  /** After bytes were stored: remembered as intact, and the store brought back within its limit. */
  private stored(sha256: string): void {
    this.remember(sha256);
    this.evict(sha256);
  }

  /** Removes least recently used artifacts until the store is within its limit (never `keep`). */
  private evict(keep: string): void {
    const limit = this.options.maxBytes;
    if (limit === undefined) return;
    const files = this.files();
    let total = files.reduce((n, f) => n + f.stat.size, 0);
    if (total <= limit) return;
    const rank = new Map([...this.used.keys()].map((sha, i) => [sha, i]));
    const order = (sha: string) => rank.get(sha) ?? -1;
    const candidates = files
      .filter((f) => f.sha256 !== keep && f.stat.nlink === 1)
      .sort((a, b) => order(a.sha256) - order(b.sha256) || a.stat.mtimeMs - b.stat.mtimeMs);
    for (const { sha256, stat } of candidates) {
      if (total <= limit) break;
      this.drop(sha256);
      total -= stat.size;
    }
  }

  /** Every artifact file of the store, with what `stat` says of it. */
  private files(): { sha256: string; stat: Stats }[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((d) => /^[0-9a-f]{2}$/.test(d))
      .flatMap((d) => readdirSync(join(this.dir, d)).filter((f) => SHA256.test(f)))
      .flatMap((sha256) => {
        try {
          return [{ sha256, stat: statSync(join(this.dir, sha256.slice(0, 2), sha256)) }];
        } catch {
          return []; // removed meanwhile
        }
      });
  }

  /** The stored artifacts: sha256, size and when the file was last written (for garbage collection). */
  list(): { sha256: string; bytes: number; mtimeMs: number }[] {
    return this.files().map(({ sha256, stat }) => ({ sha256, bytes: stat.size, mtimeMs: stat.mtimeMs }));
  }

  /** Removes an artifact (nothing if it is not there). */
  remove(sha256: string): void {
    this.drop(sha256);
  }

  /**
   * Takes a file whose sha256 the caller computed as it was written (an upload staged elsewhere) into the store,
   * without reading it again: linked where it can be, else copied. Its bytes replace any file of that name.
   */
  adopt(path: string, sha256: string): void {
    const file = this.file(sha256);
    mkdirSync(join(this.dir, sha256.slice(0, 2)), { recursive: true });
    linkOrCopy(path, file);
    this.stored(sha256);
  }

  private unchanged(sha256: string): boolean {
    const known = this.verified.get(sha256);
    if (!known) return false;
    try {
      const { size, mtimeMs, ino } = statSync(this.file(sha256));
      return size === known.size && mtimeMs === known.mtimeMs && ino === known.ino;
    } catch {
      return false;
    }
  }

  /** Small artifacts (manifests, windows, reports); large files go through `putStream` or `putFile`. */
  put(bytes: Uint8Array): string {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const file = this.file(sha256);
    // A file of that name this process has not found intact may be a damaged copy: the new bytes replace it.
    if (!this.unchanged(sha256)) {
      mkdirSync(join(this.dir, sha256.slice(0, 2)), { recursive: true });
      writeFileSync(`${file}.tmp-${process.pid}`, bytes);
      renameSync(`${file}.tmp-${process.pid}`, file);
    }
    this.stored(sha256);
    return sha256;
  }

  /**
   * Stores a stream, hashing it as it is written (never held in memory). A stream over `maxBytes` or one that
   * fails leaves nothing behind; `expectedSha256`, when given, must match.
   */
  async putStream(
    source: NodeJS.ReadableStream,
    options: { maxBytes?: number; expectedSha256?: string } = {},
  ): Promise<{ sha256: string; bytes: number }> {
    const { maxBytes = Number.POSITIVE_INFINITY, expectedSha256 } = options;
    mkdirSync(this.dir, { recursive: true });
    const temp = join(this.dir, `.upload-${process.pid}-${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > maxBytes) return done(new ArtifactTooLargeError(maxBytes));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(temp));
      const sha256 = hash.digest('hex');
      if (expectedSha256 !== undefined && sha256 !== expectedSha256)
        throw new ArtifactError(expectedSha256, 'corrupt');
      const file = this.file(sha256);
      mkdirSync(join(this.dir, sha256.slice(0, 2)), { recursive: true });
      renameSync(temp, file);
      this.stored(sha256);
      return { sha256, bytes };
    } finally {
      rmSync(temp, { force: true });
    }
  }

  /** Stores a file of this machine: hashed as a stream, then hard-linked into the store (copied across devices). */
  async putFile(path: string): Promise<{ sha256: string; bytes: number }> {
    const { sha256, bytes } = await hashFile(path);
    const file = this.file(sha256);
    if (!this.unchanged(sha256)) {
      mkdirSync(join(this.dir, sha256.slice(0, 2)), { recursive: true });
      linkOrCopy(path, file);
    }
    this.stored(sha256);
    return { sha256, bytes };
  }

  has(sha256: string): boolean {
    return existsSync(this.file(sha256));
  }

  /** The artifact's bytes, verified against its name; for small artifacts (manifests, windows, reports). */
  read(sha256: string): Buffer {
    const file = this.file(sha256);
    if (!existsSync(file)) throw new ArtifactError(sha256, 'missing');
    const bytes = readFileSync(file);
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) {
      this.drop(sha256);
      throw new ArtifactError(sha256, 'corrupt');
    }
    this.remember(sha256);
    return bytes;
  }

  /**
   * A path to the artifact's file, its bytes checked against its name (as a stream, and only when the file
   * changed since they last were). A corrupt file is removed and ArtifactError thrown.
   */
  verifiedPath(sha256: string): Promise<string> {
    const file = this.file(sha256);
    if (this.unchanged(sha256)) return Promise.resolve(file);
    let running = this.verifying.get(sha256);
    if (!running) {
      running = (async () => {
        if (!existsSync(file)) throw new ArtifactError(sha256, 'missing');
        if ((await hashFile(file)).sha256 !== sha256) {
          this.drop(sha256);
          throw new ArtifactError(sha256, 'corrupt');
        }
        this.remember(sha256);
        return file;
      })().finally(() => this.verifying.delete(sha256));
      this.verifying.set(sha256, running);
    }
    return running;
  }

  /**
   * The artifact's file without reading it again: for bytes this process has just stored (hashed on the way in),
   * where a second pass over a model of many GiB would be wasted.
   */
  storedPath(sha256: string): string {
    const file = this.file(sha256);
    if (!existsSync(file)) throw new ArtifactError(sha256, 'missing');
    return file;
  }

  private drop(sha256: string): void {
    rmSync(this.file(sha256), { force: true });
    this.verified.delete(sha256);
    this.used.delete(sha256);
  }
}

/** The sha256 and size of a file, read as a stream. */
export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * `target` as a hard link to `source` (no bytes written; onnxruntime sees a plain file, where it refuses a
 * symlink whose target lies outside the model's folder), or a copy where the two are on different devices.
 */
export function linkOrCopy(source: string, target: string): void {
  const temp = `${target}.link-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    linkSync(source, temp);
  } catch (err) {
    if (!['EXDEV', 'EPERM', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    copyFileSync(source, temp);
  }
  renameSync(temp, target);
}
