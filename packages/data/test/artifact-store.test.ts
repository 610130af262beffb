import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ArtifactError, ArtifactStore } from '../src/index.ts';

test('artifacts are named by their sha256, stored once, and a corrupted copy is refused and removed', () => {
  const store = new ArtifactStore(mkdtempSync(join(tmpdir(), 'evop-artifacts-')));
  const sha = store.put(Buffer.from('token windows'));
  assert.equal(sha, createHash('sha256').update('token windows').digest('hex'));
  assert.equal(store.put(Buffer.from('token windows')), sha, 'the same content is the same artifact');
  assert.equal(store.read(sha).toString(), 'token windows');
  writeFileSync(store.verifiedPath(sha), 'tampered');
  assert.throws(
    () => store.read(sha),
    (e: unknown) => e instanceof ArtifactError && e.reason === 'corrupt',
  );
  assert.equal(store.has(sha), false, 'removed, so that it is fetched again');
  assert.throws(
    () => store.read(sha),
    (e: unknown) => e instanceof ArtifactError && e.reason === 'missing',
  );
  assert.throws(() => store.read('../../etc/passwd'), RangeError);
  assert.deepEqual(readdirSync(join(store.dir, sha.slice(0, 2))), []);
});
