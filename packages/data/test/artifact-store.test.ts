import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ArtifactError, ArtifactStore, linkFiles } from '../src/index.ts';

test('artifacts are named by their sha256, stored once, and a corrupted copy is refused and removed', async () => {
  const store = new ArtifactStore(mkdtempSync(join(tmpdir(), 'evop-artifacts-')));
  const sha = store.put(Buffer.from('token windows'));
  assert.equal(sha, createHash('sha256').update('token windows').digest('hex'));
  assert.equal(store.put(Buffer.from('token windows')), sha, 'the same content is the same artifact');
  assert.equal(store.read(sha).toString(), 'token windows');
  writeFileSync(await store.verifiedPath(sha), 'tampered');
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

test('storing bytes again over a damaged copy left by an earlier process replaces it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'evop-artifacts-'));
  const sha = new ArtifactStore(dir).put(Buffer.from('exported model'));
  const source = join(dir, 'exported.onnx');
  writeFileSync(source, 'exported model');
  const stored = join(dir, sha.slice(0, 2), sha);
  appendFileSync(stored, 'corrupt');
  const restarted = new ArtifactStore(dir);
  assert.equal((await restarted.putFile(source)).sha256, sha);
  assert.equal(restarted.read(sha).toString(), 'exported model', 'putFile replaced the damaged copy');
  appendFileSync(stored, 'corrupt');
  assert.equal(new ArtifactStore(dir).put(Buffer.from('exported model')), sha);
  assert.equal(new ArtifactStore(dir).read(sha).toString(), 'exported model', 'put replaced it');
});

test('files over 2 GiB are stored, verified and linked as streams; a changed file is hashed again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'evop-artifacts-'));
  const store = new ArtifactStore(join(dir, 'store'));
  // Sparse: 2.1 GiB that take no disk, with a few real bytes at the end (Node cannot read such a file whole).
  const big = join(dir, 'model.onnx.data');
  const fd = openSync(big, 'w');
  writeSync(fd, Buffer.from('weights'), 0, 7, Math.floor(2.1 * 2 ** 30));
  closeSync(fd);
  const { sha256, bytes } = await store.putFile(big);
  assert.equal(bytes, Math.floor(2.1 * 2 ** 30) + 7);
  assert.equal(statSync(store.storedPath(sha256)).ino, statSync(big).ino, 'hard-linked, not copied');
  assert.equal(await store.verifiedPath(sha256), store.storedPath(sha256));
  const linked = linkFiles(
    [{ name: 'model.onnx.data', sha256 }],
    (s) => store.storedPath(s),
    join(dir, 'model'),
  );
  assert.ok(!lstatSync(linked).isSymbolicLink(), 'onnxruntime refuses symlinks that leave the model folder');

  // Appending changes size and time: the next use hashes the file again, finds it corrupt and removes it.
  appendFileSync(big, 'x');
  await assert.rejects(
    store.verifiedPath(sha256),
    (e: unknown) => e instanceof ArtifactError && e.reason === 'corrupt',
  );
  assert.equal(store.has(sha256), false);
  rmSync(dir, { recursive: true, force: true });
});

test('a store with a size limit removes the least recently used artifacts, never one a model folder links', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evop-artifacts-'));
  const store = new ArtifactStore(join(dir, 'store'), { maxBytes: 250 });
  const bytes = (c: string) => Buffer.alloc(100, c);
  const [a, b] = [store.put(bytes('a')), store.put(bytes('b'))];
  linkFiles([{ name: 'model.onnx', sha256: a }], (s) => store.storedPath(s), join(dir, 'model'));
  store.read(a); // a is used more recently than b, and linked
  const c = store.put(bytes('c'));
  assert.deepEqual(
    [store.has(a), store.has(b), store.has(c)],
    [true, false, true],
    'b went: least recently used',
  );
  const d = store.put(bytes('d'));
  assert.deepEqual([store.has(a), store.has(c), store.has(d)], [true, false, true], 'a stays while linked');
  rmSync(join(dir, 'model'), { recursive: true });
  store.put(bytes('e'));
  assert.equal(store.has(a), false, 'unlinked, a can go');
  rmSync(dir, { recursive: true, force: true });
});
