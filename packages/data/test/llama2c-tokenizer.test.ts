import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { Llama2cTokenizer, loadTokenizer, TokenizerFileError } from '../src/index.ts';

const tok = Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));
const pieceOf = (id: number) => tok.decode([id]);

test('encodes like run.c: BOS, the dummy-prefix space, merged pieces', () => {
  assert.equal(tok.vocabSize, 512);
  assert.deepEqual(tok.encode(''), [1]);
  const ids = tok.encode('Once upon a time');
  assert.equal(ids[0], 1);
  assert.deepEqual(
    ids.slice(1).map(pieceOf),
    [' Once', ' upon', ' a', ' time'],
    'common words are single merged pieces with their leading space',
  );
  assert.deepEqual(tok.encode('Once upon a time', { bos: false }), ids.slice(1));
});

test('greedy merging stops only when no adjacent pair merges into a piece', () => {
  const text = readFileSync(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'), 'utf8').slice(
    0,
    3000,
  );
  const ids = tok.encode(text, { bos: false });
  const pieces = ids.map((id) => tok.decode([2, id]));
  const vocab = new Set(Array.from({ length: tok.vocabSize }, (_, i) => tok.decode([2, i])));
  for (let i = 0; i + 1 < pieces.length; i++) {
    const merged = pieces[i]! + pieces[i + 1]!;
    assert.ok(
      !vocab.has(merged) || merged.length <= 1,
      `pair ${i} (${JSON.stringify(merged)}) could still merge`,
    );
  }
});

test('decoding inverts encoding, including bytes that fall back to <0xNN> tokens', () => {
  for (const text of ['Lily saw a big, red ball.', 'Café naïve — 日本 🐶!', 'line one\nline two']) {
    const ids = tok.encode(text);
    assert.equal(tok.decode(ids), text);
  }
  const emoji = tok.encode('🐶', { bos: false });
  assert.deepEqual(
    emoji.slice(1),
    [0xf0 + 3, 0x9f + 3, 0x90 + 3, 0xb6 + 3],
    'a code point not in the vocabulary is its UTF-8 bytes',
  );
});

test('a damaged tokenizer file names the file and the token where it breaks', () => {
  const file = join(tmpdir(), `evop-tok-${process.pid}.bin`);
  writeFileSync(file, readFileSync(resolveDataFile('stories260K/tok512.bin')).subarray(0, 3000));
  assert.throws(
    () => Llama2cTokenizer.fromFile(file),
    (err: unknown) =>
      err instanceof TokenizerFileError && err.message.includes(file) && /token \d+/.test(err.message),
  );
  assert.throws(() => loadTokenizer(join(tmpdir(), 'nope-evop.bin')), TokenizerFileError);
});
