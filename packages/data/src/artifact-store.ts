import { createHash, randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

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
export class ArtifactTooLargeError extends Error {
  override readonly name = 'ArtifactTooLargeError';
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
  }
}

/** Content-addressed files under one folder (`<dir>/<sha[0..2]>/<sha>`), written atomically, checked on read. */
export class ArtifactStore {
  constructor(readonly dir: string) {}

  private file(sha256: string): string {
    if (!SHA256.test(sha256)) throw new RangeError(`'${sha256}' is not a sha256`);
    return join(this.dir, sha256.slice(0, 2), sha256);
  }

  put(bytes: Uint8Array): string {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const file = this.file(sha256);
    if (!existsSync(file)) {
      mkdirSync(join(this.dir, sha256.slice(0, 2)), { recursive: true });
      writeFileSync(`${file}.tmp-${process.pid}`, bytes);
      renameSync(`${file}.tmp-${process.pid}`, file);
    }
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
      return { sha256, bytes };
    } finally {
      rmSync(temp, { force: true });
    }
  }

  has(sha256: string): boolean {
    return existsSync(this.file(sha256));
  }

  /** The artifact's bytes, verified against its name. */
  read(sha256: string): Buffer {
    const file = this.file(sha256);
    if (!existsSync(file)) throw new ArtifactError(sha256, 'missing');
    const bytes = readFileSync(file);
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) {
      rmSync(file, { force: true });
      throw new ArtifactError(sha256, 'corrupt');
    }
    return bytes;
  }

  /** A path to the artifact's verified file, for readers that want a path (onnxruntime). */
  verifiedPath(sha256: string): string {
    this.read(sha256);
    return this.file(sha256);
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
}
