import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
}
