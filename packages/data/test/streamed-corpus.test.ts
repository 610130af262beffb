import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { CorpusSplitter, END_OF_DOCUMENT } from '../src/corpus-splitter.ts';
import {
  CorpusError,
  corpusDocuments,
  countCorpusDocuments,
  loadTokenizer,
  readCorpus,
  type Tokenizer,
  windowsFromDocuments,
} from '../src/index.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'evop-streamed-corpus-'));
const stories = readFileSync(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'), 'utf8');

/** The split of the whole text at once, as readCorpus did it before it streamed. */
const wholeSplit = (text: string) =>
  text
    .replaceAll('\r\n', '\n')
    .split(/\n[ \t]*\n/)
    .map((d) => d.trim())
    .filter((d) => d !== '');

test('split chunk by chunk, a text gives the documents of the whole text, wherever the chunks end', () => {
  const parts = ['a', ' ', '\t', '\n', '\r\n', '\r', 'é', '\n\n', ' \n', 'word '];
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let trial = 0; trial < 300; trial++) {
    const text = Array.from({ length: 60 }, () => parts[Math.floor(random() * parts.length)]).join('');
    const splitter = new CorpusSplitter('t.txt', false);
    const events = [];
    for (let at = 0; at < text.length; ) {
      const next = at + 1 + Math.floor(random() * 5);
      events.push(...splitter.push(text.slice(at, next)));
      at = next;
    }
    events.push(...splitter.end());
    const docs: string[] = [];
    let current = '';
    for (const e of events) {
      if (e === END_OF_DOCUMENT) {
        docs.push(current.trim());
        current = '';
      } else current += e;
    }
    assert.deepEqual(
      docs.filter((d) => d !== ''),
      wholeSplit(text),
      JSON.stringify(text),
    );
  }
});

test('a corpus of several chunks reads as the whole file does; documents are counted streaming', async () => {
  const d = dir();
  const file = join(d, 'big.txt');
  const text = `${stories.replaceAll('\n', '\r\n')}\n \n${stories}`.repeat(2);
  writeFileSync(file, text);
  assert.ok(Buffer.byteLength(text) > 3 << 20, 'several 1 MiB chunks');
  const docs = readCorpus(file);
  assert.deepEqual(docs, wholeSplit(text));
  assert.equal(await countCorpusDocuments(file), docs.length);
  const jsonl = join(d, 'big.jsonl');
  writeFileSync(jsonl, docs.map((text, i) => JSON.stringify({ text, i })).join('\n'));
  assert.deepEqual(readCorpus(jsonl), docs);
  assert.equal(await countCorpusDocuments(jsonl), docs.length);
  writeFileSync(join(d, 'bad.jsonl'), '{"text": "ok"}\n\n{"text": 1}\n');
  await assert.rejects(countCorpusDocuments(join(d, 'bad.jsonl')), /bad\.jsonl:3: no string "text" field/);
  await assert.rejects(
    countCorpusDocuments(join(d, 'missing.txt')),
    (e: unknown) => e instanceof CorpusError && /cannot read corpus .*ENOENT/.test(e.message),
  );
  writeFileSync(join(d, 'empty.txt'), ' \n\n\t\n');
  await assert.rejects(countCorpusDocuments(join(d, 'empty.txt')), /has no text/);
});

/** One document of about `size` characters: the sample's stories joined by newlines, cut at a word's end. */
const oneDocument = (size: number) => {
  const words = stories.replaceAll(/\n[ \t]*\n/g, '\n');
  const text = words.repeat(Math.ceil(size / words.length));
  return text.slice(0, text.indexOf(' ', size)).trim();
};

for (const [name, file] of [
  ['llama2.c', 'stories260K/tok512.bin'],
  ['Hugging Face Llama', 'onnx-genai-tiny-random-llama-fp16/tokenizer.json'],
  ['Hugging Face GPT-2', 'onnx-ort-tiny-random-gpt2-fused/tokenizer.json'],
] as const)
  test(`${name}: a long document tokenized up to what the windows need gives the windows of the whole`, () => {
    const tokenizer: Tokenizer = loadTokenizer(resolveDataFile(file));
    const doc = oneDocument(120_000);
    const whole = tokenizer.encode(doc, { bos: true });
    for (const [seqLen, windows] of [
      [64, 40],
      [128, 100],
    ] as const) {
      assert.ok(whole.length > 2 * seqLen * windows, 'the document is longer than the windows need');
      const expected = whole.slice(0, seqLen * windows);
      // The document in pieces of every size, as a corpus file is read.
      const pieces = doc.match(/[\s\S]{1,997}/g)!;
      const streamed = windowsFromDocuments([{ pieces }, 'Another.'], tokenizer, seqLen, windows);
      assert.deepEqual(Array.from(streamed.tokens), expected);
      assert.deepEqual(windowsFromDocuments([doc], tokenizer, seqLen, windows).tokens, streamed.tokens);
    }
  });

test('the windows of a corpus far larger than memory come from its start, read no further', () => {
  const file = join(dir(), 'huge.txt');
  writeFileSync(file, oneDocument(stories.length));
  // 64 GiB in all: the rest is a hole (NUL characters, one document) that a whole read could never hold.
  closeSync(openSync(file, 'r+'));
  truncateSync(file, 64 * 2 ** 30);
  const tokenizer = loadTokenizer(resolveDataFile('stories260K/tok512.bin'));
  const windows = windowsFromDocuments(corpusDocuments(file), tokenizer, 64, 20);
  assert.equal(windows.count, 20);
  assert.deepEqual(
    Array.from(windows.tokens),
    tokenizer.encode(oneDocument(stories.length)).slice(0, 64 * 20),
  );
});
