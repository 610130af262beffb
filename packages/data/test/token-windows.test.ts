import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import {
  CorpusError,
  Llama2cTokenizer,
  readCorpus,
  TokenWindows,
  windowsFromDocuments,
} from '../src/index.ts';

const tok = Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));
const dir = () => mkdtempSync(join(tmpdir(), 'evop-corpus-'));

test('plain text splits into documents on blank lines; JSONL reads each line’s text', () => {
  const d = dir();
  writeFileSync(join(d, 'a.txt'), 'First story.\nStill first.\n\n  \nSecond story.\n\n\n');
  assert.deepEqual(readCorpus(join(d, 'a.txt')), ['First story.\nStill first.', 'Second story.']);
  writeFileSync(join(d, 'b.jsonl'), '{"text": "one"}\n\n{"text": "two", "id": 2}\n');
  assert.deepEqual(readCorpus(join(d, 'b.jsonl')), ['one', 'two']);
});

test('unreadable corpora are refused naming the file and line', () => {
  const d = dir();
  writeFileSync(join(d, 'bad.jsonl'), '{"text": "ok"}\n{"body": "no text"}\n');
  assert.throws(
    () => readCorpus(join(d, 'bad.jsonl')),
    (e: unknown) => e instanceof CorpusError && /bad\.jsonl:2: no string "text" field/.test(e.message),
  );
  writeFileSync(join(d, 'broken.jsonl'), '{"text": "ok"}\n{"text": \n');
  assert.throws(() => readCorpus(join(d, 'broken.jsonl')), /broken\.jsonl:2: not JSON/);
  writeFileSync(join(d, 'empty.txt'), '\n\n   \n');
  assert.throws(() => readCorpus(join(d, 'empty.txt')), /has no text/);
  assert.throws(() => readCorpus(join(d, 'missing.txt')), /cannot read corpus .*ENOENT/);
});

test('windows follow the protocol: BOS per document, concatenated, cut without overlap, tail dropped', () => {
  const docs = ['Once upon a time.', 'The cat sat.', 'A dog ran far away from home.'];
  const stream = docs.flatMap((d) => tok.encode(d));
  const windows = windowsFromDocuments(docs, tok, 8);
  assert.equal(windows.count, Math.floor(stream.length / 8));
  assert.deepEqual(Array.from(windows.tokens), stream.slice(0, windows.count * 8));
  assert.equal(windows.tokens[0], 1, 'the first document starts with BOS');
  assert.equal(windowsFromDocuments(docs, tok, 8, 1).count, 1);
});

test('token windows round-trip through their bytes and are named by content', () => {
  const text = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  const windows = windowsFromDocuments(text, tok, 64, 20);
  const copy = TokenWindows.deserialize(windows.serialize());
  assert.deepEqual(copy.tokens, windows.tokens);
  assert.equal(copy.sha256, windows.sha256);
  assert.notEqual(windows.select([1, 0]).sha256, windows.select([0, 1]).sha256);
  assert.deepEqual(windows.select([3]).tokens, windows.window(3));
  assert.throws(() => TokenWindows.deserialize(windows.serialize().subarray(0, 100)), /needs/);
});
