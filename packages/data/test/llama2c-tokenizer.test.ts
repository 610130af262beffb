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

/** run.c's encode as written there, quadratic merge loop included, over an independent read of the file. */
function runCEncode(text: string): number[] {
  const buf = readFileSync(resolveDataFile('stories260K/tok512.bin'));
  const pieces: string[] = [];
  const scores: number[] = [];
  for (let at = 4; at < buf.length; ) {
    scores.push(buf.readFloatLE(at));
    const len = buf.readInt32LE(at + 4);
    pieces.push(buf.toString('latin1', at + 8, at + 8 + len));
    at += 8 + len;
  }
  const lookup = (p: string) => pieces.indexOf(p);
  const tokens = [1, lookup(' ')];
  for (const c of text) tokens.push(lookup(c) >= 0 ? lookup(c) : c.charCodeAt(0) + 3);
  for (;;) {
    let best = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup(pieces[tokens[i]!]! + pieces[tokens[i + 1]!]!);
      if (id !== -1 && scores[id]! > best) {
        best = scores[id]!;
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) return tokens;
    tokens.splice(bestIdx, 2, bestId);
  }
}

test('encoding equals run.c’s quadratic loop on real text', () => {
  const text = readFileSync(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'), 'utf8').slice(
    5000,
    6500,
  );
  assert.ok(/^[\x20-\x7e\n]*$/.test(text), 'ASCII sample');
  assert.deepEqual(tok.encode(text), runCEncode(text));
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
