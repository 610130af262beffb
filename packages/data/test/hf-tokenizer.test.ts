import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { loadTokenizer, TokenizerFileError } from '../src/index.ts';

test('a Hugging Face tokenizer.json encodes GPT-2 BPE as GPT-2 does', () => {
  const tok = loadTokenizer(resolveDataFile('onnx-ort-tiny-random-gpt2-fused/tokenizer.json'));
  assert.ok(tok.vocabSize >= 50257, `vocabulary of ${tok.vocabSize}`);
  assert.equal(tok.bosId, 50256, '<|endoftext|> is GPT-2 BOS');
  assert.deepEqual(tok.encode('Hello world', { bos: false }), [15496, 995]);
  assert.deepEqual(tok.encode('Hello world'), [50256, 15496, 995]);
  assert.equal(tok.decode(tok.encode('Once upon a time, naïve café.')), 'Once upon a time, naïve café.');
});

test('a Llama tokenizer.json adds BOS per its config and round-trips text', () => {
  const tok = loadTokenizer(resolveDataFile('onnx-genai-tiny-random-llama-fp16/tokenizer.json'));
  const ids = tok.encode('The cat sat on the mat.');
  assert.equal(ids[0], tok.bosId);
  assert.ok(ids.length > 3);
  assert.equal(tok.decode(ids), 'The cat sat on the mat.');
});

test('a JSON file that is not a tokenizer is refused naming the file', () => {
  const file = join(tmpdir(), `evop-not-tokenizer-${process.pid}.json`);
  writeFileSync(file, '{"hello": 1}');
  assert.throws(
    () => loadTokenizer(file),
    (err: unknown) => err instanceof TokenizerFileError && err.message.includes(file),
  );
  writeFileSync(file, '{"model": ');
  assert.throws(() => loadTokenizer(file), TokenizerFileError);
});
