import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DataFileNotFoundError, resolveDataFile } from '../src/index.ts';

test('EVOP_DATA_DIR is searched before the shared data folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evop-data-'));
  mkdirSync(join(dir, 'stories260K'));
  writeFileSync(join(dir, 'stories260K', 'tok512.bin'), 'x');
  assert.equal(
    resolveDataFile('stories260K/tok512.bin', { EVOP_DATA_DIR: dir }),
    join(dir, 'stories260K', 'tok512.bin'),
  );
});

test('the shared data folder is found without configuration', () => {
  assert.match(resolveDataFile('stories260K/tok512.bin', {}), /shared\/data\/stories260K\/tok512\.bin$/);
});

test('a missing file names the file and every place searched', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evop-data-'));
  assert.throws(
    () => resolveDataFile('nope/model.onnx', { EVOP_DATA_DIR: dir }),
    (err: unknown) => {
      assert.ok(err instanceof DataFileNotFoundError);
      assert.equal(err.searched.length, 3);
      assert.ok(err.message.includes('nope/model.onnx'));
      assert.ok(err.message.includes(dir));
      assert.ok(err.message.includes('.cache/evop'));
      return true;
    },
  );
});
